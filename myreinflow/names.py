"""The project's vocabulary: flows, policies, pipeline stages and figures, with the names people read.

Torch-free and import-free, so that the package, the Snakemake rules and the report read one table each;
adding a stage or a flow starts here.
"""

from __future__ import annotations

# --- flows and what their networks predict --------------------------------------------------------------
FLOW_KINDS = ("reflow", "meanflow")  # the keys of flows.FLOWS
PREDICTIONS = ("velocity", "data")  # what a flow network outputs
# flow steps K a flow samples with when a command is given none: ReFlow's Euler steps, MeanFlow's one jump
DEFAULT_STEPS = {"reflow": 4, "meanflow": 1}
# flow steps of the FQL family's flow samples (the FQL and Q-chunking references' 10 for the multi-step flow)
CRITIC_FLOW_STEPS = {"reflow": 10, "meanflow": 1}
# how a flow, a baseline or a 2D-study model is named in tables, figures and the report
FLOW_LABELS = {"reflow": "ReFlow", "meanflow": "MeanFlow", "rectified": "2-rectified flow", "mlp": "MLP"}

# MeanFlow's training options (flows/meanflow.py)
MEANFLOW_TR_SAMPLERS = ("uniform", "logit_normal", "r0")
MEANFLOW_TARGETS = ("identity", "imf", "split")
MEANFLOW_ERRORS = ("output", "velocity")
MEANFLOW_REDUCTIONS = ("sum", "mean")

# --- policies: the networks a checkpoint holds, by name (the eval CSV's `policy` column) -----------------
BC_MODELS = ("reflow", "meanflow", "mlp")
POLICY_KINDS = ("reflow", "meanflow", "mlp", "categorical", "onestep")
TOY2D_MODELS = ("reflow", "meanflow", "rectified")
TOY2D_DISTRIBUTIONS = ("checkerboard", "8gaussians", "moons", "spirals")  # the keys of toy2d.DISTRIBUTIONS

# --- pipeline stages ------------------------------------------------------------------------------------
CRITIC_STAGES = ("fql", "mfql", "qc")  # the offline critic-based stages: their checkpoints hold a critic
# the online stages {algo}_{phase}: `online` continues the offline {algo} run in the env, `continued` (its
# control) continues it for as many updates without the env; each phase → the run it needs
ONLINE_PHASES = {"online": "the offline run it continues", "continued": "the online run it controls"}
CONTROL_STAGES = {f"{algo}_continued": f"{algo}_online" for algo in CRITIC_STAGES}
# the stages with an env interaction after the offline phase: stage → (its name, the policy of its runs that
# acts online; None: the run's one policy). An online run's acting policy is FQL's one-step policy,
# MeanFlow-QL's and QC's flow; ReinFlow fine-tunes one policy (an FQL run's one-step policy, or the BC flow)
ONLINE_STAGES = {
    "fql_online": ("FQL online", "onestep"),
    "mfql_online": ("MeanFlow-QL online", "flow"),
    "qc_online": ("QC online", "flow"),
    "reinflow": ("ReinFlow", None),
}
# the offline stages' names in tables and figures, in the figures' panel order
STAGE_NAMES = {"bc": "BC", "fql": "FQL", "mfql": "MeanFlow-QL", "qc": "QC"}
# each stage in the report's words
STAGE_WORDS = {
    "bc": "behaviour cloning",
    "fql": "FQL (a one-step policy distilled from the flow, against the critic)",
    "mfql": "MeanFlow-QL (the MeanFlow's one step is the actor)",
    "qc": "QC (Q-chunking's best-of-N: the flow acts, the critic picks the best of its samples)",
    **{
        f"{algo}_online": f"{name} online (the offline {name} run continued in the env)"
        for algo, name in STAGE_NAMES.items()
        if algo in CRITIC_STAGES
    },
    **{
        f"{algo}_continued": f"the control of {STAGE_NAMES[algo]} online"
        " (the offline run continued as long, without the env)"
        for algo in CRITIC_STAGES
    },
    "reinflow": "ReinFlow (PPO through the noise-injected sampler of the policy before it)",
}
CONTROL_WORDS = "its control (the offline run continued as long, no env)"

# the critic-based methods of the ReFlow-vs-MeanFlow comparison in RL: (stage, flow) → (the policy that
# acts, its name, the flow steps K it acts with); FQL from the ReFlow is the reference each other method is
# measured against, QC over the ReFlow (the strongest multi-step method) the MeanFlow-based ones' second one
CRITIC_METHODS = {
    ("fql", "reflow"): ("onestep", "FQL from ReFlow", 1),
    ("fql", "meanflow"): ("onestep", "FQL from MeanFlow", 1),
    ("mfql", "meanflow"): ("flow", "MeanFlow-QL", CRITIC_FLOW_STEPS["meanflow"]),
    ("qc", "reflow"): ("flow", "QC over ReFlow", CRITIC_FLOW_STEPS["reflow"]),
    ("qc", "meanflow"): ("flow", "QC over MeanFlow", CRITIC_FLOW_STEPS["meanflow"]),
}
RL_REFERENCE = ("fql", "reflow")
QC_REFERENCE = ("qc", "reflow")

# --- figures --------------------------------------------------------------------------------------------
# each figure by its one name, the stem of results/figures/{stem}.png (`myreinflow summarize figure STEM`,
# the pipeline's {figure}): the summary CSVs results/summary/{input}.csv it is drawn from, in the order the
# command takes them, and where the report shows it (its category and labels)
FIGURES = {
    "return_vs_steps": dict(
        inputs=("table",), category="Results", labels={"figure": "return vs inference steps"}
    ),
    "latency_vs_steps": dict(
        inputs=("eval",), category="Results", labels={"figure": "latency vs inference steps"}
    ),
    "learning_curves": dict(inputs=("train",), category="Training", labels={"figure": "learning curves"}),
    "bc_to_fql": dict(inputs=("table",), category="Results", labels={"figure": "BC to FQL"}),
    "reflow_vs_meanflow_rl": dict(
        inputs=("train", "table"), category="Results", labels={"figure": "ReFlow vs MeanFlow in RL"}
    ),
    "online": dict(inputs=("train",), category="Results", labels={"figure": "online fine-tuning"}),
    "toy2d_metrics": dict(
        inputs=("toy2d",), category="2D study", labels={"distribution": "all", "figure": "metrics vs steps"}
    ),
}
