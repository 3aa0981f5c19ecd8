"""Pure rules of Mission Control: no database, no I/O, unit-tested without servers.

Sizing advice and health status (`sizing`), license evaluation (`licensing`), which alerts an
observation raises or clears (`alerts`), the thresholds they use (`policy`) and the per-window
sampling that bounds audit writes (`sampling`).
"""
