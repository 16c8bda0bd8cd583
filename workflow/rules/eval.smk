rule eval:
    """Rollouts of every policy of one BC, FQL or MFQL checkpoint over the sweep of inference steps, one row per
    policy, steps and episode (`policy`: the flow, mlp, or FQL's one-step policy)."""
    input:
        model="results/{stage}/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        csv="results/eval/{stage}/{dataset}/{flow}/seed{seed}.csv",
    log:
        "logs/eval/{stage}/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/eval/{stage}/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        stage="bc|fql|mfql",
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
        "python -m myreinflow eval --checkpoint {input.model} --policy all --out {output.csv}"
        " {params.args} --threads {threads} {params.run} --quiet > {log} 2>&1"
