rule fql:
    """Critic-based fine-tuning of a BC flow offline, by the {algo} of the FQL family: fql (a one-step
    policy distilled from the flow, beside it), mfql (MeanFlow-QL: the MeanFlow's one step is the actor)
    or qc (Q-chunking's best-of-N: the flow acts, the critic picks the best of its N samples).
    """
    input:
        dataset=lambda w: minari_dir(w.dataset),
        init="results/bc/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        # the checkpoint, its log and config stay when the job starts again: an interrupted run resumes from
        # them (a run of other options replaces them: --replace_other_run)
        model=update("results/{algo}/{dataset}/{flow}/seed{seed}/model.pt"),
        train=update("results/{algo}/{dataset}/{flow}/seed{seed}/train.csv"),
        config=update("results/{algo}/{dataset}/{flow}/seed{seed}/config.yaml"),
        options="results/{algo}/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/{algo}/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/{algo}/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        algo="fql|mfql|qc",
        flow="reflow|meanflow",
    # the longest jobs, on the critical path: before BC, 2D and evaluation jobs that are ready too
    priority: 2
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["train"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        data=lambda w: data_args(w.dataset),
        options=options_json(),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow {wildcards.algo} --config {output.options}"
        " {params.data}"
        " --init {input.init} --flow {wildcards.flow} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --replace_other_run --quiet) > {log} 2>&1"
