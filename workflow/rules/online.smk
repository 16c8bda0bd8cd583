rule online:
    """Offline → online: the offline {algo} run of {flow} continued in the env for {algo}_online's
    online_steps (one update per env step by default); or ({phase} continued) its control, the same
    updates and evaluations on the offline data alone, no env step taken. The run directory starts as a
    copy of the offline one, which the run resumes (its train.csv: the offline rows, then the online
    ones); a job run again resumes its own checkpoint while that is newer than the offline run's.
    """
    input:
        dataset=lambda w: minari_dir(w.dataset),
        init="results/bc/{dataset}/{flow}/seed{seed}/model.pt",
        offline="results/{algo}/{dataset}/{flow}/seed{seed}/model.pt",
        offline_train="results/{algo}/{dataset}/{flow}/seed{seed}/train.csv",
    output:
        model=update("results/{algo}_{phase}/{dataset}/{flow}/seed{seed}/model.pt"),
        train=update("results/{algo}_{phase}/{dataset}/{flow}/seed{seed}/train.csv"),
        config=update("results/{algo}_{phase}/{dataset}/{flow}/seed{seed}/config.yaml"),
        options="results/{algo}_{phase}/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/{algo}_{phase}/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/{algo}_{phase}/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        algo="|".join(CRITIC_STAGES),
        phase="|".join(ONLINE_PHASES),
        flow="reflow|meanflow",
    priority: 2
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["train"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        data=lambda w: data_args(w.dataset),
        # the offline run's options (resumption checks they are the same), the online ones and, for the
        # control, no env
        options=lambda w: json.dumps(
            online_options(w.algo, w.phase, w.dataset, w.flow), sort_keys=True
        ),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(([ {output.model} -nt {input.offline} ]"
        " || (cp {input.offline} {output.model} && cp {input.offline_train} {output.train}))"
        " && printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow {wildcards.algo} --config {output.options} {params.data}"
        " --init {input.init} --flow {wildcards.flow} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --quiet) > {log} 2>&1"


rule reinflow:
    """ReinFlow: online PPO fine-tuning through the noise-injected sampler of the FQL run's one-step
    policy of {flow} where the dataset has the fql stage, else of its BC {flow}."""
    input:
        # the dataset: σ's units are its actions' ranges (`sigma_units data`)
        dataset=lambda w: minari_dir(w.dataset),
        init=reinflow_init,
    output:
        model="results/reinflow/{dataset}/{flow}/seed{seed}/model.pt",
        train="results/reinflow/{dataset}/{flow}/seed{seed}/train.csv",
        config="results/reinflow/{dataset}/{flow}/seed{seed}/config.yaml",
        options="results/reinflow/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/reinflow/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/reinflow/{dataset}/{flow}/seed{seed}.tsv"
    wildcard_constraints:
        flow="reflow|meanflow",
    priority: 2
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["train"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        policy=lambda w: reinflow_start(w.dataset)[1],
        options=options_json("reinflow"),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow reinflow --config {output.options}"
        " --init {input.init} --policy {params.policy} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --quiet) > {log} 2>&1"
