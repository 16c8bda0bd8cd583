rule summary_eval:
    """Every evaluation CSV in one tidy table, means with 95 % CIs, and the headline comparisons."""
    input:
        eval_csvs(),
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
        "python -m myreinflow.analysis eval {input} --out {output.eval}"
        " --table {output.table} --headline {output.headline} > {log} 2>&1"


rule summary_train:
    """Every training CSV (BC and FQL) in one tidy table."""
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


rule figure_return:
    input:
        "results/summary/table.csv",
    output:
        report(
            "results/figures/return_vs_steps.png",
            caption="../report/return_vs_steps.rst",
            category="Results",
            labels={"figure": "return vs inference steps"},
        ),
    log:
        "logs/figures/return_vs_steps.log",
    benchmark:
        "logs/benchmarks/figures/return_vs_steps.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure return {input} --out {output} > {log} 2>&1"


rule figure_latency:
    input:
        "results/summary/eval.csv",
    output:
        report(
            "results/figures/latency_vs_steps.png",
            caption="../report/latency_vs_steps.rst",
            category="Results",
            labels={"figure": "latency vs inference steps"},
        ),
    log:
        "logs/figures/latency_vs_steps.log",
    benchmark:
        "logs/benchmarks/figures/latency_vs_steps.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure latency {input} --out {output} > {log} 2>&1"


rule figure_fql:
    input:
        "results/summary/table.csv",
    output:
        report(
            "results/figures/bc_to_fql.png",
            caption="../report/bc_to_fql.rst",
            category="Results",
            labels={"figure": "BC to FQL"},
        ),
    log:
        "logs/figures/bc_to_fql.log",
    benchmark:
        "logs/benchmarks/figures/bc_to_fql.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure fql {input} --out {output} > {log} 2>&1"


rule figure_curves:
    input:
        "results/summary/train.csv",
    output:
        report(
            "results/figures/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Training",
            labels={"figure": "learning curves"},
        ),
    log:
        "logs/figures/learning_curves.log",
    benchmark:
        "logs/benchmarks/figures/learning_curves.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure curves {input} --out {output} > {log} 2>&1"


rule figure_toy2d:
    input:
        "results/summary/toy2d.csv",
    output:
        report(
            "results/figures/toy2d_metrics.png",
            caption="../report/toy2d_metrics.rst",
            category="2D study",
            labels={"distribution": "all", "figure": "metrics vs steps"},
        ),
    log:
        "logs/figures/toy2d_metrics.log",
    benchmark:
        "logs/benchmarks/figures/toy2d_metrics.tsv"
    conda:
        "../envs/myreinflow.yaml"
    shell:
        "python -m myreinflow.analysis figure toy2d {input} --out {output} > {log} 2>&1"
