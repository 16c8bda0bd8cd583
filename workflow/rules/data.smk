rule data:
    """Get one Minari dataset into minari_root: generate it from a recipe or download it. Its directory is
    the output, an input of every job that reads the dataset: a deleted one is got again, and all after it
    re-runs."""
    output:
        directory(f"{MINARI_ROOT}/{{dataset_id}}"),
    log:
        "logs/data/{dataset_id}.log",
    benchmark:
        "logs/benchmarks/data/{dataset_id}.tsv"
    wildcard_constraints:
        dataset_id=DATASET_IDS,
    # datasets first: every training job waits for one
    priority: 3
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["data"]
    resources:
        local_cpus=local_cpus,
    params:
        source=lambda w: SOURCES[w.dataset_id],
    shell:
        "python -m myreinflow data --dataset {wildcards.dataset_id} --source {params.source}"
        " --quiet > {log} 2>&1"


rule dataset_card:
    """The card of one dataset of the config (id, source, size, returns, reference scores, recipe)."""
    input:
        dataset=lambda w: minari_dir(w.dataset),
    output:
        card=report(
            "results/datasets/{dataset}.json",
            caption="../report/dataset_card.rst",
            category="Datasets",
            labels={"dataset": "{dataset}"},
        ),
    log:
        "logs/dataset_card/{dataset}.log",
    benchmark:
        "logs/benchmarks/dataset_card/{dataset}.tsv"
    conda:
        "../envs/myreinflow.yaml"
    params:
        id=lambda w: DATASETS[w.dataset]["id"],
        source=lambda w: dataset_source(w.dataset),
    shell:
        "python -m myreinflow data --dataset {params.id} --source {params.source}"
        " --card {output.card} --quiet > {log} 2>&1"
