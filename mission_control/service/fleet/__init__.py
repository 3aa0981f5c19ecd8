"""The clusters as Mission Control's operators see them: records and enrollment, licenses."""
