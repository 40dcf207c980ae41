# Reference values for tests/test_measurement.py (R 4.x, psych 2.2.9, GPArotation, jsonlite).
# Data: psych::bfi (International Personality Item Pool, 2800 respondents; Revelle 2024),
# items keyed (reverse-keyed items = 7 - x), listwise complete per construct.
# Run from the repository root:
#   Rscript tests/reference/measurement_reference.R [output.json [keyed.csv]]
# Default outputs: the committed tests/reference/measurement_reference.json and bfi_keyed.csv
# (regenerate them only on purpose, and review the diff). The tests pass temporary paths, re-run
# the script when R is installed and compare both outputs with the committed ones.
suppressPackageStartupMessages({library(psych); library(GPArotation); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out_json <- if (length(args) >= 1) args[1] else "tests/reference/measurement_reference.json"
out_csv <- if (length(args) >= 2) args[2] else "tests/reference/bfi_keyed.csv"
data(bfi)
keyed <- data.frame(
  A1r = 7 - bfi$A1, A2 = bfi$A2, A3 = bfi$A3, A4 = bfi$A4, A5 = bfi$A5,
  C1 = bfi$C1, C2 = bfi$C2, C3 = bfi$C3, C4r = 7 - bfi$C4, C5r = 7 - bfi$C5,
  N1 = bfi$N1, N2 = bfi$N2, N3 = bfi$N3, N4 = bfi$N4, N5 = bfi$N5,
  E1r = 7 - bfi$E1, E2r = 7 - bfi$E2)
write.csv(keyed, out_csv, row.names = FALSE, na = "")
constructs <- list(agreeableness = c("A1r", "A2", "A3", "A4", "A5"),
                   conscientiousness = c("C1", "C2", "C3", "C4r", "C5r"),
                   neuroticism = c("N1", "N2", "N3", "N4", "N5"),
                   extraversion2 = c("E1r", "E2r"))
out <- list(psych_version = as.character(packageVersion("psych")), constructs = list())
for (nm in names(constructs)) {
  x <- na.omit(keyed[, constructs[[nm]]])
  a <- psych::alpha(x, warnings = FALSE)
  res <- list(n = nrow(x), alpha = a$total$raw_alpha,
              feldt_lower = a$feldt$lower.ci[[1]], feldt_upper = a$feldt$upper.ci[[1]],
              alpha_if_deleted = unname(a$alpha.drop$raw_alpha),
              item_rest_r = unname(a$item.stats$r.drop))
  if (ncol(x) >= 3) {
    f <- psych::fa(x, nfactors = 1, fm = "ml")
    L <- as.numeric(f$loadings)
    res$ml_loadings <- L
    res$omega_ml <- sum(L)^2 / (sum(L)^2 + sum(1 - L^2))
    om <- suppressWarnings(suppressMessages(psych::omega(x, nfactors = 1, fm = "ml", plot = FALSE)))
    res$psych_omega_tot <- om$omega.tot
  } else {
    r <- cor(x)[1, 2]
    res$spearman_brown <- 2 * r / (1 + r)
  }
  out$constructs[[nm]] <- res
}
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_json)
