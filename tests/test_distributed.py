"""train.py past one GPU (plumbing/distributed.py) as a spec, on the CPU with gloo: two processes launched through
torch.distributed.run (what `torchrun` runs), a tiny configuration on the 8-loop drum set. Each launch costs
about ten seconds of CPU; the two-process run is shared by the tests that inspect it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from plumbing import distributed
import train
from plumbing.checkpoint import load_checkpoint
from plumbing.distributed import World
from train_fixtures import cfg_for, tiny_drum_set   # noqa: F401  (fixture)

REPO = Path(train.__file__).parent
TWO_PROCESSES = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]  # = torchrun
LAUNCH_TIMEOUT = 300        # seconds; a hang fails the test instead of blocking the suite


def cli_args(cfg: train.TrainConfig) -> list[str]:
    """cfg as train.py flags; every field is given, so the CPU preset changes nothing."""
    args = []
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if v is not None:
            args += [f"--{f.name.replace('_', '-')}", ("yes" if v else "no") if isinstance(v, bool) else str(v)]
    return args + ["--device", "cpu"]


def launch_env(report: Path | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}   # launched scripts import pjloop
    env.pop(distributed.REPORT_ENV, None)
    if report is not None:
        env[distributed.REPORT_ENV] = str(report)
    return env


def launch(cfg: train.TrainConfig, cwd: Path, *extra: str, report: Path | None = None):
    return subprocess.run([*TWO_PROCESSES, str(REPO / "train.py"), *cli_args(cfg), *extra], cwd=cwd,
                          env=launch_env(report), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)


def reports(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, tiny_drum_set):
    """A 2-step run of the projected discriminator (aisfx, batch-norm heads) in two processes."""
    tmp = tmp_path_factory.mktemp("ddp")
    cfg = cfg_for(tmp, tiny_drum_set, "aisfx", steps=2, minutes=10.0, csm_upsample=False)
    res = launch(cfg, tmp, report=tmp / "report")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return cfg, tmp, res


# ------------------------------------------------------------------------------------------------
# Without a process group
# ------------------------------------------------------------------------------------------------

def test_without_torchrun_the_run_is_a_world_of_one(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    world = distributed.init("cpu")
    assert world == World(rank=0, size=1, local_rank=0, device="cpu") and world.main
    assert distributed.agree(world, True, 1.5) == (True, 1.5)
    assert distributed.gather(world, "state") == ["state"]
    module = torch.nn.Linear(2, 2)
    assert distributed.wrap(module, world) is module


def test_the_global_batch_is_split_evenly_or_refused():
    assert distributed.local_batch(64, World(size=8)) == 8
    with pytest.raises(ValueError, match="multiple of 3"):
        distributed.local_batch(64, World(size=3))


def test_every_rank_and_step_gets_its_own_seed():
    seeds = {distributed.rank_seed(0, rank, step) for rank in range(4) for step in (0, 100)}
    assert len(seeds) == 8
    assert distributed.rank_seed(7, 1, 5) == distributed.rank_seed(7, 1, 5)


# ------------------------------------------------------------------------------------------------
# Two processes
# ------------------------------------------------------------------------------------------------

def test_a_two_process_run_launched_by_torchrun_finishes(two_process_run):
    cfg, _, res = two_process_run
    ck = load_checkpoint(Path(cfg.out) / "latest.pt")
    assert ck["step"] == 2 and ck["world_size"] == 2 and ck["config"]["batch"] == 4     # the global batch
    # every rank's RNG state is saved (exact resume) and the ranks drew from different streams
    assert len(ck["rng_per_rank"]) == 2
    assert not torch.equal(ck["rng_per_rank"][0]["sampler"], ck["rng_per_rank"][1]["sampler"])
    assert res.stdout.count("done: 2 steps") == 1                                      # rank 0 alone prints


def test_both_ranks_hold_bit_identical_g_and_d_weights(two_process_run):
    cfg, tmp, _ = two_process_run
    r0, r1 = reports(tmp / "report")
    assert r0["step"] == r1["step"] == 2
    for model in ("G", "G_ema", "D"):              # parameters and buffers (G's w_avg, spectral-norm vectors)
        assert r0[model] == r1[model], model
    # D's heads keep per-rank batch-norm statistics (Projected GAN's choice); the checkpoint holds rank 0's
    assert r0["D_bn_stats"] != r1["D_bn_stats"]
    ck = load_checkpoint(Path(cfg.out) / "latest.pt")
    assert distributed.state_hashes(ck["g"])[0] == r0["G"]
    assert distributed.state_hashes(ck["g_ema"])[0] == r0["G_ema"]
    assert distributed.state_hashes(ck["d"]) == (r0["D"], r0["D_bn_stats"])


def test_only_rank_0_writes_files(two_process_run, tmp_path_factory):
    cfg, tmp, _ = two_process_run
    root = tmp_path_factory.getbasetemp()          # the run, the data set and every other test folder
    written = [[p for p in r["writes"] if Path(p).is_relative_to(root)] for r in reports(tmp / "report")]
    assert written[1] == []
    assert str(Path(cfg.out) / "latest.pt") in written[0]
    assert sorted(os.listdir(cfg.out)) == ["ckpt_0000002.pt", "grid_0000002.png", "latest.pt"]


def test_checkpoints_resume_across_world_sizes_both_ways(two_process_run, tmp_path):
    cfg, _, _ = two_process_run
    shutil.copytree(cfg.out, tmp_path / "run")
    one = replace(cfg, out=str(tmp_path / "run"), steps=3)
    train.train(one, device="cpu", resume=True)                      # 2 processes -> 1
    ck = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ck["step"] == 3 and ck["world_size"] == 1
    res = launch(replace(one, steps=4), tmp_path, "--resume")        # 1 process -> 2
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resumed" in res.stdout and "at step 3" in res.stdout
    ck = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert ck["step"] == 4 and ck["world_size"] == 2


def rank_pid(launcher_pid: int, rank: int) -> int:
    """The pid of one rank among the launcher's children (Linux /proc; torchrun sets RANK in their environment)."""
    children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    for pid in children:
        if f"RANK={rank}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return int(pid)
    raise LookupError(f"no rank {rank} among {children}")


@pytest.mark.parametrize("target", ["launcher", "rank 1"])
def test_sigterm_stops_both_ranks_after_the_same_step_and_rank_0_saves(target, tmp_path, tiny_drum_set):
    """SIGTERM to the launcher (a cluster scheduler; Ctrl-C is forwarded the same way) reaches every rank; to
    rank 1 alone, only the per-step all-reduce of the stop flag tells rank 0."""
    cfg = cfg_for(tmp_path, tiny_drum_set, "none", steps=100_000, minutes=10.0, ckpt_every=2)
    log = open(tmp_path / "launcher.log", "w+")
    proc = subprocess.Popen([*TWO_PROCESSES, str(REPO / "train.py"), *cli_args(cfg)], cwd=tmp_path,
                            env=launch_env(tmp_path / "report"), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + LAUNCH_TIMEOUT
        while not (Path(cfg.out) / "latest.pt").exists():              # both ranks are inside the loop
            assert proc.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        os.kill(proc.pid if target == "launcher" else rank_pid(proc.pid, 1), signal.SIGTERM)
        proc.wait(timeout=LAUNCH_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    log.seek(0)
    output = log.read()
    r0, r1 = reports(tmp_path / "report")          # written at the very end of train(): both ranks got there
    assert r0["step"] == r1["step"] >= 2
    assert output.count(f"interrupted after step {r0['step']}") == 1
    assert "forcefully" not in output              # torchrun never had to SIGKILL a rank
    if target == "rank 1":
        assert proc.returncode == 0                # both ranks finished normally: the launcher did too
    ck = load_checkpoint(Path(cfg.out) / "latest.pt")
    assert ck["step"] == r0["step"] and distributed.state_hashes(ck["g"])[0] == r0["G"] == r1["G"]


def test_a_failure_on_one_rank_stops_every_rank_without_a_hang(tmp_path):
    script = tmp_path / "fail_on_one_rank.py"
    script.write_text(f"""import os
from plumbing import distributed
world = distributed.init("cpu")
def fail_on(rank):
    if world.rank == rank:
        raise ValueError(f"rank {{rank}} failed")
    return "ok"
for name, fn in (("main_first", distributed.main_first), ("together", distributed.together)):
    for rank in (0, 1):
        try:
            fn(world, lambda: fail_on(rank))
            outcome = "ok"
        except Exception as e:
            outcome = type(e).__name__
        os.write(1, f"{{world.rank}} {{name}} {{rank}} {{outcome}}\\n".encode())   # one write: ranks never interleave
distributed.leave()      # as every torchrun worker of pjloop ends (a clean exit, no C++ teardown)
""")
    res = subprocess.run([*TWO_PROCESSES, str(script)], cwd=tmp_path, env=launch_env(), capture_output=True,
                         text=True, timeout=LAUNCH_TIMEOUT)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("main_first", "together"):
        for failing in (0, 1):
            for rank in (0, 1):
                expected = "ValueError" if rank == failing else "PeerFailed"
                assert f"{rank} {name} {failing} {expected}" in res.stdout


# ------------------------------------------------------------------------------------------------
# Checkpoints that are not pjloop's: one line from every CLI, and nothing in them runs
# ------------------------------------------------------------------------------------------------

class Payload:
    """Pickles as a call of exec: loading the file without weights_only would create the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('the pickle ran')",)


@pytest.fixture
def bad_checkpoints(tmp_path, two_process_run):
    marker = tmp_path / "pickle_code_ran"
    crafted = tmp_path / "crafted" / "latest.pt"
    crafted.parent.mkdir()
    torch.save({"g": Payload(marker), "g_ema": Payload(marker), "step": 1}, crafted)
    truncated = tmp_path / "truncated" / "latest.pt"
    truncated.parent.mkdir()
    blob = (Path(two_process_run[0].out) / "latest.pt").read_bytes()
    truncated.write_bytes(blob[: len(blob) // 2])
    return {"crafted": crafted, "truncated": truncated}, marker


def cli_command(cli: str, ckpt: Path, data: Path) -> list[str]:
    if cli == "train.py":
        return [str(REPO / "train.py"), "--resume", "--out", str(ckpt.parent), "--data", str(data),
                "--features", "none", "--device", "cpu"]
    if cli == "sample.py":
        return [str(REPO / "sample.py"), str(ckpt), "--out", str(ckpt.parent / "samples")]
    return [str(REPO / "evaluate.py"), str(ckpt), "--data", str(data), "-n", "8", "--device", "cpu"]


def assert_one_line(stderr: str, ckpt: Path, reason: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert str(ckpt) in lines[0] and reason in lines[0] and "Traceback" not in stderr


REASONS = {"crafted": "none of it ran", "truncated": "truncated"}


@pytest.mark.parametrize("kind", ["crafted", "truncated"])
@pytest.mark.parametrize("cli", ["train.py", "sample.py", "evaluate.py"])
def test_a_foreign_checkpoint_gives_one_line_and_its_pickle_never_runs(cli, kind, bad_checkpoints, tiny_drum_set,
                                                                       tmp_path):
    paths, marker = bad_checkpoints
    res = subprocess.run([sys.executable, *cli_command(cli, paths[kind], tiny_drum_set)], cwd=tmp_path,
                         env=launch_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert res.returncode != 0
    assert_one_line(res.stderr, paths[kind], REASONS[kind])
    assert res.stderr.startswith(cli)
    assert not marker.exists()


def test_under_torchrun_every_rank_gives_the_one_line(bad_checkpoints, tiny_drum_set, tmp_path):
    paths, marker = bad_checkpoints
    logs = tmp_path / "logs"
    res = subprocess.run([*TWO_PROCESSES, "--redirects=3", f"--log-dir={logs}",
                          *cli_command("train.py", paths["crafted"], tiny_drum_set)],
                         cwd=tmp_path, env=launch_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert res.returncode != 0
    per_rank = sorted(logs.rglob("stderr.log"))
    assert len(per_rank) == 2
    for log in per_rank:
        assert_one_line(log.read_text(), paths["crafted"], REASONS["crafted"])
    assert not marker.exists()


@pytest.mark.parametrize("world_size", ["1", "2"])
@pytest.mark.parametrize("message", [None, "train.py: the reason"])
def test_leave_ends_with_the_message_alone_and_its_status(world_size, message, tmp_path):
    """distributed.leave: one line on stderr and status 1 for a failure, nothing and 0 otherwise; as a torchrun
    worker (WORLD_SIZE > 1) through os._exit, so that no C++ teardown can add a line or abort."""
    code = f"from plumbing import distributed; import atexit; atexit.register(print, 'atexit ran'); print('out'); distributed.leave({message!r})"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**launch_env(), "WORLD_SIZE": world_size},
                         capture_output=True, text=True, timeout=LAUNCH_TIMEOUT)
    assert res.returncode == (0 if message is None else 1)
    assert res.stderr == ("" if message is None else message + "\n")
    torchrun_worker = world_size != "1"
    assert res.stdout == ("out\n" if torchrun_worker else "out\natexit ran\n")   # flushed; no atexit after os._exit
