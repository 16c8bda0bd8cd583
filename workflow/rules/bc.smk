rule bc:
    """Behaviour cloning of one flow (or the MLP baseline) on one dataset with one seed."""
    input:
        dataset=lambda w: minari_dir(w.dataset),
    output:
        # the checkpoint, its log and config stay when the job starts again: an interrupted run resumes from
        # them (a run of other options replaces them: --replace_other_run)
        model=update("results/bc/{dataset}/{flow}/seed{seed}/model.pt"),
        train=update("results/bc/{dataset}/{flow}/seed{seed}/train.csv"),
        config=update("results/bc/{dataset}/{flow}/seed{seed}/config.yaml"),
        options="results/bc/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/bc/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/bc/{dataset}/{flow}/seed{seed}.tsv"
    # before the 2D study and evaluations: FQL waits for BC
    priority: 1
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["train"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        data=lambda w: data_args(w.dataset),
        options=options_json("bc"),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow bc --config {output.options}"
        " {params.data}"
        " --flow {wildcards.flow} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --replace_other_run --quiet) > {log} 2>&1"
