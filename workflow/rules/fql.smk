rule fql:
    """Flow Q-learning: fine-tune a BC flow offline, with a one-step policy distilled beside it."""
    input:
        dataset=lambda w: minari_dir(w.dataset),
        init="results/bc/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        model="results/fql/{dataset}/{flow}/seed{seed}/model.pt",
        train="results/fql/{dataset}/{flow}/seed{seed}/train.csv",
        config="results/fql/{dataset}/{flow}/seed{seed}/config.yaml",
        options="results/fql/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/fql/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/fql/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        flow="reflow|meanflow",
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["train"]
    resources:
        gpu=1,
    params:
        data=lambda w: data_args(w.dataset),
        options=options_json("fql"),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow fql --config {output.options}"
        " {params.data}"
        " --init {input.init} --flow {wildcards.flow} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --quiet) > {log} 2>&1"
