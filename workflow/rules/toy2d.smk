rule toy2d:
    """The 2D study on one distribution: every flow trained, sampled over a sweep of steps, plotted."""
    output:
        metrics="results/toy2d/{distribution}/metrics.csv",
        reference="results/toy2d/{distribution}/reference.csv",
        config="results/toy2d/{distribution}/config.yaml",
        per_flow=expand(
            "results/toy2d/{{distribution}}/{flow}/{file}",
            flow=config["toy2d"]["flows"],
            file=["metrics.csv", "samples.npz", "train.csv", "model.pt"],
        ),
        samples=report(
            "results/toy2d/{distribution}/samples.png",
            caption="../report/toy2d_samples.rst",
            category="2D study",
            labels={"distribution": "{distribution}", "figure": "samples"},
        ),
        metrics_png="results/toy2d/{distribution}/metrics.png",  # the report's is toy2d_metrics.png
        trajectories=report(
            "results/toy2d/{distribution}/trajectories.png",
            caption="../report/toy2d_trajectories.rst",
            category="2D study",
            labels={"distribution": "{distribution}", "figure": "trajectories"},
        ),
        options="results/toy2d/{distribution}/options.json",
    log:
        "logs/toy2d/{distribution}.log",
    benchmark:
        "logs/benchmarks/toy2d/{distribution}.tsv"
    conda:
        "../envs/myreinflow.yaml"
    threads: config["threads"]["toy2d"]
    resources:
        gpu=GPU_JOB,
        local_cpus=local_cpus,
    params:
        flows=config["toy2d"]["flows"],
        train_steps=config["toy2d"]["steps"],
        inference_steps=config["toy2d"]["inference_steps"],
        seed=config["toy2d"]["seed"],
        options=json.dumps(config["toy2d"]["options"], sort_keys=True),
        out=lambda w, output: os.path.dirname(output.metrics),
        run=run_settings(),
    shell:
        "(printf '%s\\n' {params.options:q} > {output.options}"
        " && python -m myreinflow toy2d --config {output.options}"
        " --distribution {wildcards.distribution} --flows {params.flows} --steps {params.train_steps}"
        " --inference_steps {params.inference_steps} --seed {params.seed} --out {params.out}"
        " --threads {threads} {params.run} --quiet) > {log} 2>&1"
