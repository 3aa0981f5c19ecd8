"""The clusters as Mission Control's operators and the console see them: records, enrollment
and licenses (`admin`, `enrollment`), and the typed queries the console reads: the fleet
overview, one cluster in full with its history, alerts across the fleet.
"""
