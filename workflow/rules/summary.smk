rule summary_eval:
    """Every evaluation CSV in one tidy table, means with 95 % CIs, and the headline comparisons."""
    input:
        evals=eval_csvs(),
        train="results/summary/train.csv",
    output:
        eval=report(
            "results/summary/eval.csv",
            caption="../report/summary_eval.rst",
            category="Tables",
            labels={"table": "eval.csv"},
        ),
        table=report(
            "results/summary/table.csv",
            caption="../report/summary_table.rst",
            category="Tables",
            labels={"table": "table.csv"},
        ),
        headline=report(
            "results/summary/headline.csv",
            caption="../report/summary_headline.rst",
            category="Results",
            labels={"figure": "headline numbers"},
        ),
    log:
        "logs/summary/eval.log",
    benchmark:
        "logs/benchmarks/summary/eval.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis eval {input.evals} --out {output.eval} --train {input.train}"
        " --table {output.table} --headline {output.headline} > {log} 2>&1"


rule summary_train:
    """Every training CSV (BC, FQL, MFQL and the online stages) in one tidy table."""
    input:
        run_files("train.csv"),
    output:
        report(
            "results/summary/train.csv",
            caption="../report/summary_train.rst",
            category="Tables",
            labels={"table": "train.csv"},
        ),
    log:
        "logs/summary/train.log",
    benchmark:
        "logs/benchmarks/summary/train.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis train {input} --out {output} > {log} 2>&1"


rule summary_runs:
    """The number of each critic-based run (the mean of its last three evaluations during training) and
    of each method over its seeds, with t-intervals over seeds and pooled Wilson intervals.
    """
    input:
        train=critic_run_files("train.csv"),
        config=critic_run_files("config.yaml"),
    output:
        report(
            "results/summary/runs.csv",
            caption="../report/summary_runs.rst",
            category="Tables",
            labels={"table": "runs.csv"},
        ),
    log:
        "logs/summary/runs.log",
    benchmark:
        "logs/benchmarks/summary/runs.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis runs {input.train} --out {output} > {log} 2>&1"


rule summary_published:
    """Our OGBench success rates beside the published numbers of the papers this study reproduces."""
    input:
        table="results/summary/table.csv",
        train="results/summary/train.csv",
    output:
        report(
            "results/summary/published.csv",
            caption="../report/summary_published.rst",
            category="Results",
            labels={"figure": "published numbers"},
        ),
    log:
        "logs/summary/published.log",
    benchmark:
        "logs/benchmarks/summary/published.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis published {input.table} {input.train} --out {output} > {log} 2>&1"


rule summary_toy2d:
    """Every 2D-study metrics CSV in one tidy table."""
    input:
        toy2d_csvs(),
    output:
        report(
            "results/summary/toy2d.csv",
            caption="../report/summary_toy2d.rst",
            category="Tables",
            labels={"table": "toy2d.csv"},
        ),
    log:
        "logs/summary/toy2d.log",
    benchmark:
        "logs/benchmarks/summary/toy2d.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis toy2d {input} --out {output} > {log} 2>&1"


rule figure:
    """One figure of the study, by its file stem, from the summary CSVs names.FIGURES gives it. report()
    takes one caption file per output pattern (no wildcards, no function), so figure.rst picks the text
    by {figure}.
    """
    input:
        lambda w: [
            f"results/summary/{name}.csv" for name in FIGURES[w.figure]["inputs"]
        ],
    output:
        report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category=lambda w: FIGURES[w.figure]["category"],
            labels=lambda w: FIGURES[w.figure]["labels"],
        ),
    log:
        "logs/figures/{figure}.log",
    benchmark:
        "logs/benchmarks/figures/{figure}.tsv"
    wildcard_constraints:
        figure="|".join(FIGURES),
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure {wildcards.figure} {input} --out {output} > {log} 2>&1"
