"""myreinflow pipeline: dataset → BC → FQL → evaluation → summary CSVs → figures → report.

snakemake --cores 8 --resources gpu=1                 # the default experiment (config/config.yaml)
snakemake --cores 8 --resources gpu=1 --configfile config/full.yaml
snakemake --report results/report.html
"""

from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_.-]+",
    flow=r"reflow|meanflow|mlp",
    seed=r"\d+",
    distribution=r"[A-Za-z0-9_.-]+",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/bc.smk"
include: "workflow/rules/fql.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/toy2d.smk"
include: "workflow/rules/summary.smk"


rule all:
    default_target: True
    """Every summary table and figure of the experiment (and so every job before them)."""
    input:
        final_outputs(),
