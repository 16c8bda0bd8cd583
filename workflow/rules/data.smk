rule data:
    """Get one dataset into minari_root (generate it from a recipe or download it); write its card."""
    output:
        card=report(
            "results/datasets/{dataset}.json",
            caption="../report/dataset_card.rst",
            category="Datasets",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/data/{dataset}.log",
    benchmark:
        "logs/benchmarks/data/{dataset}.tsv"
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["data"]
    params:
        id=lambda w: DATASETS[w.dataset]["id"],
        source=lambda w: DATASETS[w.dataset]["source"],
    shell:
        "python -m myreinflow data --dataset {params.id} --source {params.source}"
        " --card {output.card} --quiet > {log} 2>&1"
