"""Scripted (non-learned) expert policies and composable behaviour perturbations.

Policies are callables ``policy(obs) -> action`` with ``reset(seed)`` called at the start of each episode.
Wrappers (:class:`GaussianNoise`, :class:`EpsilonRandom`, :class:`Decoy`) compose; ``reset(seed)`` is passed
down the chain so every episode is reproducible from its seed alone.

Pusher-v5 physics the controller relies on (as found with MuJoCo 3.2/4.0):

* ``tips_arm`` (the reward's "fingertip") is the centre of the fork's cross-bar; only the fork capsules
  touch the object.
* Arm/object contacts are frictionless and extremely soft (object mass 7.9e-6 kg): the contact force is
  ~0.39 N per metre of penetration against a slide damping of 0.5 N s/m, so *no* policy can push the
  object faster than ~5 cm/s. The expert keeps the bar ~6 cm inside the object and pushes at that speed.

Controller: (1) APPROACH — multi-start damped-least-squares IK for a pre-push pose behind the object, then
a cubic joint trajectory tracked with computed torque; (2) PUSH — resolved-rate task-space control of the
fingertip along the object→goal direction with lateral re-centring and height keeping; penetration (and
so speed) shrinks near the goal. If the bar loses the object it falls back to a task-space approach.
"""

from __future__ import annotations

from typing import Any, Protocol

import gymnasium as gym
import numpy as np

OBJ = slice(17, 20)  # object position in a Pusher-v5 observation
GOAL = slice(20, 23)  # goal position in a Pusher-v5 observation
TIP = slice(14, 17)  # fingertip position in a Pusher-v5 observation

Z_PUSH = -0.275  # object centre height
Z_SAFE = -0.17  # fork above the object top (-0.225) plus margin
DT = 0.05  # Pusher-v5 control period (frame_skip 5 x 0.01 s)

# Where the arm can still push the object to; decoy goals are clipped into it. The object starts in
# x∈[0.25, 0.65], y∈[-0.35, -0.05]; the true goal is always (0.45, -0.05).
DECOY_BOX_LO = np.array([0.15, -0.55])
DECOY_BOX_HI = np.array([0.80, 0.10])

_EYE6 = np.eye(6)

# IK seeds (joint configurations) tried in addition to the current configuration.
_IK_SEEDS = [
    np.zeros(7),
    np.array([0.3, 0.8, 0.0, -1.2, 0.0, -0.5, 0.0]),
    np.array([0.8, 0.9, 1.0, -1.5, 0.5, -0.5, 0.0]),
    np.array([0.3, 1.3, -1.0, -1.8, -1.3, -0.7, -1.0]),
    np.array([1.5, 1.3, 1.5, -1.9, 0.8, -0.5, -1.0]),
]


class Policy(Protocol):
    def reset(self, seed: int | None = None) -> None: ...

    def __call__(self, obs: np.ndarray) -> Any: ...


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3-vector cross product; ``np.cross`` is much slower on single 3-vectors and dominated the expert's run
    time."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _full_mass(mujoco: Any, m: Any, d: Any, out: np.ndarray) -> np.ndarray:
    """Dense joint-space inertia; ``mj_fullM``'s signature changed in MuJoCo 3.3."""
    try:
        mujoco.mj_fullM(m, d, out)
    except TypeError:
        mujoco.mj_fullM(m, out, d.qM)
    return out


class PusherExpert:
    """Scripted expert for ``Pusher-v5`` (return ≈ -33, final object–goal distance ≈ 0.09 m).

    Reads the simulator state from ``env.unwrapped.model/.data`` besides the observation; the goal is taken
    from the observation only, so feeding a modified observation steers it elsewhere (see :class:`Decoy`).
    """

    def __init__(self, env: gym.Env) -> None:
        import mujoco  # deferred: importing this module must not need MuJoCo

        self._mj = mujoco
        self.m = env.unwrapped.model
        self.d = env.unwrapped.data
        self.bid = self.m.body("tips_arm").id
        self.kt, self.vmax, self.w_rot, self.kv = 3.0, 0.5, 0.1, 8.0
        self.d_app, self.pen, self.v_ff, self.k_al = 0.09, 0.058, 0.045, 4.0
        self.k_goal, self.k_lat, self.rot_tol, self.damp_ls = 8.0, 2.0, 0.35, 1e-3
        self.t_min, self.t_scale, self.w_ik, self.kp_j, self.kd_j = 0.4, 1.8, 0.3, 20.0, 6.0
        # heavier proximal joints move slower
        self.joint_w = np.array([1.0, 0.8, 0.3, 0.4, 0.3, 0.3, 0.3])
        nv = self.m.nv
        self.dik = mujoco.MjData(self.m)  # scratch data so IK never disturbs the live simulation
        self.jacp_ik, self.jacr_ik = np.zeros((3, nv)), np.zeros((3, nv))
        self.jacp, self.jacr = np.zeros((3, nv)), np.zeros((3, nv))
        self.M = np.zeros((nv, nv))
        self.damp = self.m.dof_damping[:7].copy()
        self.lo, self.hi = self.m.jnt_range[:7, 0].copy(), self.m.jnt_range[:7, 1].copy()
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget the current plan (the controller itself is deterministic; ``seed`` is unused)."""
        self.phase = "approach"
        self.u: np.ndarray | None = None
        self.traj: tuple | None = None
        self._traj_done = False
        self.t = 0

    def _ik(self, p_des: np.ndarray, n3: np.ndarray, q0: np.ndarray, iters: int = 60) -> tuple:
        """Damped least squares: fingertip at ``p_des``, fork bar parallel to ±``n3``."""
        m, d, mj = self.m, self.dik, self._mj
        q = q0.copy()
        for _ in range(iters):
            d.qpos[:7] = q
            mj.mj_kinematics(m, d)
            mj.mj_comPos(m, d)
            mj.mj_jacBody(m, d, self.jacp_ik, self.jacr_ik, self.bid)
            R = d.xmat[self.bid].reshape(3, 3)
            s = 1.0 if R[:, 1] @ n3 >= 0 else -1.0
            er = _cross(R[:, 1], s * n3)
            ep = p_des - d.xpos[self.bid]
            e = np.concatenate([ep, self.w_ik * er])
            J = np.vstack([self.jacp_ik[:, :7], self.w_ik * self.jacr_ik[:, :7]])
            dq = J.T @ np.linalg.solve(J @ J.T + 1e-3 * _EYE6, e)
            q = np.clip(q + 0.8 * dq, self.lo, self.hi)
        return q, np.linalg.norm(ep) + 0.1 * np.linalg.norm(er)

    def _plan_approach(self, obs: np.ndarray) -> None:
        obj, goal = obs[OBJ], obs[GOAL]
        u, _ = self._push_dir(obj, goal)
        u3, n3 = np.array([u[0], u[1], 0.0]), np.array([-u[1], u[0], 0.0])
        p = obj - u3 * self.d_app
        p[2] = Z_PUSH
        q_now = self.d.qpos[:7].copy()
        best: tuple | None = None
        for q0 in [q_now, *_IK_SEEDS]:
            q, err = self._ik(p, n3, q0)
            score = err + 0.01 * np.abs(q - q_now).sum()
            if best is None or score < best[0]:
                best = (score, q)
        q1 = best[1]
        T = max(self.t_min, self.t_scale * np.sqrt(np.max(np.abs(q1 - q_now) * self.joint_w)))
        self.traj = (q_now, q1, T, self.t, obj[:2].copy())

    def _push_dir(self, obj: np.ndarray, goal: np.ndarray) -> tuple[np.ndarray, float]:
        diff = goal[:2] - obj[:2]
        dist = float(np.linalg.norm(diff))
        if self.u is None or dist > 0.04:  # frozen close to the goal, where the direction gets noisy
            self.u = diff / max(dist, 1e-6)
        return self.u, dist

    def _plan(self, obs: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Desired fingertip velocity and push direction."""
        tip, obj, goal = obs[TIP], obs[OBJ], obs[GOAL]
        u, dist = self._push_dir(obj, goal)
        u3, n3 = np.array([u[0], u[1], 0.0]), np.array([-u[1], u[0], 0.0])
        rel = tip - obj
        along, lat = rel @ u3, rel @ n3
        bar_ok = abs(R[:, 1] @ u3) < np.sin(self.rot_tol)
        if self.phase == "push":
            if abs(lat) > 0.07 or along > 0.01 or along < -0.14 or tip[2] > Z_PUSH + 0.05:
                self.phase = "approach"
        elif -self.d_app - 0.04 < along < -0.03 and abs(lat) < 0.04 and tip[2] < Z_PUSH + 0.025 and bar_ok:
            self.phase = "push"

        if self.phase == "approach":
            pre = obj - u3 * self.d_app
            # lift over the object only when the hand is in front of it
            in_way = along > -0.06 and abs(lat) < 0.17 and np.linalg.norm(rel[:2]) < 0.25
            target = np.array([pre[0], pre[1], Z_SAFE if in_way else Z_PUSH])
            v = self.kt * (target - tip)
            nv = np.linalg.norm(v)
            if nv > self.vmax:
                v *= self.vmax / nv
        else:
            # object speed ≈ 0.78 * penetration (soft contact vs slide damping); ease off near the goal
            pen = min(self.pen, self.k_goal * dist * 0.1)
            along_des = -0.07 + pen
            ff = self.v_ff * pen / self.pen
            v = (ff + self.k_al * (along_des - along)) * u3 - self.k_lat * lat * n3
            v[2] = self.kt * (Z_PUSH - tip[2])
        return v, u3

    def _joint_approach(self, obs: np.ndarray) -> tuple[np.ndarray, bool]:
        m, d = self.m, self.d
        if self.traj is None or np.linalg.norm(obs[17:19] - self.traj[4]) > 0.01:
            self._plan_approach(obs)
        q0, q1, T, t0, _ = self.traj
        s = min(1.0, (self.t - t0 + 1) * DT / T)
        # cubic (minimum-acceleration) profile: cheaper torques than minimum jerk
        b = 3 * s**2 - 2 * s**3
        bd = (6 * s - 6 * s**2) / T if s < 1 else 0.0
        bdd = (6 - 12 * s) / T**2 if s < 1 else 0.0
        q_ref, v_ref, a_ref = q0 + b * (q1 - q0), bd * (q1 - q0), bdd * (q1 - q0)
        _full_mass(self._mj, m, d, self.M)
        q, qd = d.qpos[:7], d.qvel[:7]
        tau = (
            self.M[:7, :7] @ (a_ref + self.kp_j * (q_ref - q) + self.kd_j * (v_ref - qd))
            + self.damp * v_ref
            + d.qfrc_bias[:7]
        )
        return np.clip(tau, -2.0, 2.0).astype(np.float32), s >= 1.0

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        m, d = self.m, self.d
        self.t += 1
        R = d.xmat[self.bid].reshape(3, 3)
        v, u3 = self._plan(obs, R)
        if self.phase == "approach" and not self._traj_done:
            a, finished = self._joint_approach(obs)
            if not finished:
                return a
            self._traj_done = True
        self._mj.mj_jacBody(m, d, self.jacp, self.jacr, self.bid)
        n3 = np.array([-u3[1], u3[0], 0.0])
        s = 1.0 if R[:, 1] @ n3 >= 0 else -1.0
        w = self.kt * _cross(R[:, 1], s * n3)
        J = np.vstack([self.jacp[:, :7], self.w_rot * self.jacr[:, :7]])
        x = np.concatenate([v, self.w_rot * w])
        qd_des = J.T @ np.linalg.solve(J @ J.T + self.damp_ls * _EYE6, x)
        q = d.qpos[:7]
        # don't drive into joint limits
        qd_des = np.where((q <= self.lo + 0.02) & (qd_des < 0), 0.0, qd_des)
        qd_des = np.where((q >= self.hi - 0.02) & (qd_des > 0), 0.0, qd_des)
        _full_mass(self._mj, m, d, self.M)
        tau = self.M[:7, :7] @ (self.kv * (qd_des - d.qvel[:7])) + self.damp * qd_des + d.qfrc_bias[:7]
        return np.clip(tau, -2.0, 2.0).astype(np.float32)


class CartPoleExpert:
    """Linear state feedback for ``CartPole-v1``: push right iff ``k · obs > 0``; holds the 500-step cap."""

    def __init__(self, env: gym.Env | None = None, gains: tuple[float, ...] = (0.5, 1.0, 10.0, 2.0)) -> None:
        self.k = np.asarray(gains, dtype=np.float64)

    def reset(self, seed: int | None = None) -> None:
        pass

    def __call__(self, obs: np.ndarray) -> int:
        return int(self.k @ np.asarray(obs, dtype=np.float64) > 0.0)


class RandomPolicy:
    """Uniform random actions from ``action_space``, reproducible per episode via ``reset(seed)``."""

    def __init__(self, action_space: gym.Space) -> None:
        self.space = action_space
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.space.seed(seed)

    def __call__(self, obs: np.ndarray) -> Any:
        return self.space.sample()


class _Wrapper:
    salt = 0  # distinct per wrapper type so stacked wrappers draw independent random streams

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.rng = np.random.default_rng()

    def reset(self, seed: int | None = None) -> None:
        self.rng = np.random.default_rng(None if seed is None else [seed, self.salt])
        self.policy.reset(seed)


class GaussianNoise(_Wrapper):
    """Adds N(0, sigma²) to every action of a continuous-action policy, clipped to the action bounds."""

    salt = 1

    def __init__(self, policy: Policy, action_space: gym.spaces.Box, sigma: float) -> None:
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(
                f"Gaussian action noise needs a continuous (Box) action space, got {action_space}"
            )
        super().__init__(policy)
        self.space, self.sigma = action_space, float(sigma)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        a = np.asarray(self.policy(obs), dtype=np.float64)
        a = a + self.rng.normal(0.0, self.sigma, size=a.shape)
        return np.clip(a, self.space.low, self.space.high).astype(self.space.dtype)


class EpsilonRandom(_Wrapper):
    """With probability ``eps`` replaces the action by a uniform random one (the policy still runs, so
    stateful experts keep their plan)."""

    salt = 2

    def __init__(self, policy: Policy, action_space: gym.Space, eps: float) -> None:
        super().__init__(policy)
        self.space, self.eps = action_space, float(eps)

    def __call__(self, obs: np.ndarray) -> Any:
        a = self.policy(obs)
        if self.rng.random() >= self.eps:
            return a
        if isinstance(self.space, gym.spaces.Discrete):
            return int(self.space.start + self.rng.integers(self.space.n))
        return self.rng.uniform(self.space.low, self.space.high).astype(self.space.dtype)


def reflected_goal(obs: np.ndarray) -> np.ndarray:
    """The true goal reflected through the object's position (x, y), clipped into the pushable area."""
    obj, goal = obs[OBJ], obs[GOAL]
    wrong = goal.copy()
    wrong[:2] = np.clip(2.0 * obj[:2] - goal[:2], DECOY_BOX_LO, DECOY_BOX_HI)
    return wrong


class Decoy(_Wrapper):
    """Steers a Pusher policy to a wrong goal by feeding it an observation copy with the goal replaced.

    The decoy goal is fixed at the episode's first step (default: :func:`reflected_goal` of the start
    state). The caller still sees and stores the real observation. With ``switch_every=N`` the policy
    alternates — decoy for N steps, true goal for N steps, … — and replans at every switch.
    """

    salt = 3

    def __init__(self, policy: Policy, switch_every: int | None = None, goal_fn=reflected_goal) -> None:
        if switch_every is not None and switch_every < 1:
            raise ValueError(f"switch_every must be a positive number of steps, got {switch_every}")
        super().__init__(policy)
        self.switch_every, self.goal_fn = switch_every, goal_fn
        self._goal: np.ndarray | None = None
        self._t = 0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._goal, self._t = None, 0

    def __call__(self, obs: np.ndarray) -> Any:
        if self._goal is None:
            self._goal = np.asarray(self.goal_fn(obs), dtype=obs.dtype)
        t, self._t = self._t, self._t + 1
        decoy_on = self.switch_every is None or (t // self.switch_every) % 2 == 0
        if self.switch_every is not None and t > 0 and t % self.switch_every == 0:
            self.policy.reset()  # the plan was made for the other goal
        if not decoy_on:
            return self.policy(obs)
        fake = obs.copy()
        fake[GOAL] = self._goal
        return self.policy(fake)


EXPERTS = {"pusher": PusherExpert, "cartpole": CartPoleExpert}


def make_policy(
    name: str,
    env: gym.Env,
    sigma: float = 0.0,
    eps: float = 0.0,
    decoy: bool = False,
    switch_every: int | None = None,
) -> Policy:
    """Builds expert ``name`` (or ``"random"``) with the perturbations applied in a fixed order:
    decoy (changes what the expert sees), then Gaussian noise, then epsilon-random actions."""
    if name == "random":
        return RandomPolicy(env.action_space)
    if name not in EXPERTS:
        raise ValueError(f"unknown expert {name!r}; known: {sorted(EXPERTS)} or 'random'")
    policy: Policy = EXPERTS[name](env)
    if decoy:
        policy = Decoy(policy, switch_every=switch_every)
    if sigma > 0:
        policy = GaussianNoise(policy, env.action_space, sigma)
    if eps > 0:
        policy = EpsilonRandom(policy, env.action_space, eps)
    return policy
