"""myreinflow pipeline: dataset → BC → FQL → online fine-tuning → evaluation → summary CSVs → figures → report.

snakemake --cores 8 --resources gpu=1                 # the default experiment (config/config.yaml)
snakemake --cores 8 --resources gpu=1 --configfile config/full.yaml
snakemake --report results/report.html
"""

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("8.0")


configfile: "config/config.yaml"


try:
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError as e:  # one line naming the bad key, instead of the schema dump
    error = e.__context__  # the jsonschema ValidationError
    if not hasattr(error, "absolute_path"):
        raise
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    raise WorkflowError(f"config key {key}: {error.message}") from None


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
include: "workflow/rules/online.smk"
include: "workflow/rules/eval.smk"
include: "workflow/rules/toy2d.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/report.smk"


# every checkpoint, summary table and figure of the study, and so every job before them
rule all:
    default_target: True
    input:
        final_outputs(),
