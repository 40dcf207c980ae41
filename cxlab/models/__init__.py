"""Models: survival (KM, Cox, AFT, diagnostics, evaluation), measurement (construct scores,
reliability) and loyalty (ordinal/logistic models, driver importance)."""
