rule fql_online:
    """FQL offline → online: the offline FQL run of {flow}, continued in the env for fql_online's
    online_steps (one update per env step by default). Its run directory starts as a copy of the offline
    one, which the run resumes: its train.csv holds the offline rows, then the online ones.
    """
    input:
        dataset=lambda w: minari_dir(w.dataset),
        init="results/bc/{dataset}/{flow}/seed{seed}/model.pt",
        offline="results/fql/{dataset}/{flow}/seed{seed}/model.pt",
        offline_train="results/fql/{dataset}/{flow}/seed{seed}/train.csv",
    output:
        model="results/fql_online/{dataset}/{flow}/seed{seed}/model.pt",
        train="results/fql_online/{dataset}/{flow}/seed{seed}/train.csv",
        config="results/fql_online/{dataset}/{flow}/seed{seed}/config.yaml",
        options="results/fql_online/{dataset}/{flow}/seed{seed}/options.json",
    log:
        "logs/fql_online/{dataset}/{flow}/seed{seed}.log",
    benchmark:
        "logs/benchmarks/fql_online/{dataset}/{flow}/seed{seed}.tsv"
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
        data=lambda w: data_args(w.dataset),
        # the offline run's options (resumption checks they are the same) and the online ones
        options=lambda w: json.dumps(
            options("fql", w.dataset, w.flow)
            | options("fql_online", w.dataset, w.flow),
            sort_keys=True,
        ),
        out=lambda w, output: run_dir(output),
        run=run_settings(),
    shell:
        "(cp {input.offline} {output.model} && cp {input.offline_train} {output.train}"
        " && printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow fql --config {output.options} {params.data}"
        " --init {input.init} --flow {wildcards.flow} --seed {wildcards.seed} --out {params.out}"
        " --threads {threads} {params.run} --quiet) > {log} 2>&1"


rule reinflow:
    """ReinFlow: online PPO fine-tuning through the noise-injected sampler of the FQL run's one-step
    policy of {flow} where the dataset has the fql stage, else of its BC {flow}."""
    input:
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
