rule eval_bc:
    """Rollouts of a BC policy over the sweep of inference steps (one row per steps and episode)."""
    input:
        model="results/bc/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        csv="results/eval/bc/{dataset}/{flow}/seed{seed}.csv",
    log:
        "logs/eval/bc/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/eval/bc/{dataset}/{flow}/seed{seed}.tsv"
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["eval"]
    resources:
        gpu=1,
    params:
        args=eval_args,
        run=run_settings(wandb=False),
    shell:
        "python -m myreinflow eval --checkpoint {input.model} --out {output.csv}"
        " {params.args} --threads {threads} {params.run} --quiet > {log} 2>&1"


rule eval_fql:
    """Rollouts of both FQL policies, the one-step policy and the fine-tuned flow, joined into one CSV
    (its `policy` column tells them apart)."""
    input:
        model="results/fql/{dataset}/{flow}/seed{seed}/model.pt",
    output:
        csv="results/eval/fql/{dataset}/{flow}/seed{seed}.csv",
        onestep=temp("results/eval/fql/{dataset}/{flow}/seed{seed}.onestep.csv"),
        flow=temp("results/eval/fql/{dataset}/{flow}/seed{seed}.flow.csv"),
    log:
        "logs/eval/fql/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/eval/fql/{dataset}/{flow}/seed{seed}.tsv"
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["eval"]
    resources:
        gpu=1,
    params:
        args=eval_args,
        run=run_settings(wandb=False),
    shell:
        "(python -m myreinflow eval --checkpoint {input.model} --policy onestep --out {output.onestep}"
        " {params.args} --threads {threads} {params.run} --quiet"
        " && python -m myreinflow eval --checkpoint {input.model} --policy flow --out {output.flow}"
        " {params.args} --threads {threads} {params.run} --quiet"
        " && python -m myreinflow.analysis concat {output.onestep} {output.flow} --out {output.csv}"
        ") > {log} 2>&1"
