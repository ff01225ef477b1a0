# Writes egsingle.csv.gz beside this script: the egsingle data of R's mlmRev
# package (7,230 yearly maths scores of 1,721 children in 60 Chicago schools;
# Bryk & Raudenbush 2002, ch. 8), used by bench_peers.py for its 3-level
# nested model `math ~ year + (1 | schoolid/childid)`.
#
# Provenance: generated on 2026-11-29 with R 4.2.2, mlmRev 1.0.8 (lme4 1.1.31).
# Every column is written as is; factors as their labels.
#
# Run from the repository root:  Rscript benchmarks/data/make_egsingle.R

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "benchmarks/data"

data("egsingle", package = "mlmRev")
stopifnot(nrow(egsingle) == 7230,
          nlevels(egsingle$childid) == 1721,
          nlevels(egsingle$schoolid) == 60)
out <- gzfile(file.path(here, "egsingle.csv.gz"), "w")
write.csv(egsingle, out, row.names = FALSE)
close(out)
cat("wrote", file.path(here, "egsingle.csv.gz"), "from mlmRev",
    as.character(packageVersion("mlmRev")), "\n")
