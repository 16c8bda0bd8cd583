rule eval:
    """Rollouts of every policy of one training run's checkpoint (BC, FQL, MFQL, QC, online, ReinFlow)
    over the sweep of inference steps, one row per policy, steps and episode (`policy`: the flow, mlp,
    or FQL's one-step policy; `stage`: the run's stage in the study; a critic-based run acts as in
    training, with the best of its `candidates`)."""
    input:
        model="results/{stage}/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        csv="results/eval/{stage}/{dataset}/{flow}/seed{seed}.csv",
    log:
        "logs/eval/{stage}/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/eval/{stage}/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        stage="|".join(["bc", *CRITIC_STAGES, *ONLINE_STAGES, *CONTROL_STAGES]),
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["eval"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        args=eval_args,
        run=run_settings(wandb=False),
    shell:
        "python -m myreinflow eval --checkpoint {input.model} --policy all --stage_name {wildcards.stage}"
        " --out {output.csv}"
        " {params.args} --threads {threads} {params.run} --quiet > {log} 2>&1"
