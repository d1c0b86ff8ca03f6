"""The README's main workflow, photo2cartoon with train.py's defaults (its own file: its graphs take minutes to
compile, and the suite's two workers share files, not tests)."""
import json

import numpy as np

from tests.helpers import assert_resume_from_checkpoint_is_exact, run_cli, run_history


def test_photo2cartoon_default_path_fine_tunes_with_face_id_and_resumes(digit_domains, tmp_path):
    """The README's main workflow with train.py's defaults (photo2cartoon arch, GRAPH mode), at tiny sizes:
    the published photo2cartoon file and photo2cartoon's MobileFaceNet file (written here from the reference
    networks with random weights) are converted, then fine-tuned from with the face-ID loss on; resuming from
    the checkpoint of iteration 2 gives the uninterrupted run's losses. (The photo2cartoon graphs take about a
    minute to compile, so this resumes from a copy of the straight run's checkpoint rather than a third,
    killed run; SIGKILL itself is exercised with --arch ugatit in test_train_ugatit.py.)"""
    import mindspore as ms
    import torch
    from tests.helpers import randomize_torch
    from torch_refs.mobilefacenet_ref import MobileFaceNetRef
    from torch_refs.ugatit_ref import P2CGeneratorRef
    data, _, _ = digit_domains
    gens = {n: randomize_torch(P2CGeneratorRef(ngf=8, img_size=256, light=True), seed=i)
            for i, n in enumerate(("genA2B", "genB2A"))}
    torch.save({n: g.state_dict() for n, g in gens.items()}, tmp_path / "photo2cartoon_weights.pt")
    torch.manual_seed(0)   # PyTorch's own initialisation: an embedding that still depends on its input
    torch.save(MobileFaceNetRef(512).state_dict(), tmp_path / "model_mobilefacenet.pth")
    for src, dst, extra in (("photo2cartoon_weights.pt", "p2c", []),
                            ("model_mobilefacenet.pth", "mfn", ["--arch", "mobilefacenet"])):
        r = run_cli(["convert_weights.py", "--src", str(tmp_path / src), "--dst", str(tmp_path / dst)] + extra)
        assert r.returncode == 0, r.stderr[-2000:]
    runs = tmp_path / "runs"
    ref = assert_resume_from_checkpoint_is_exact(
        ["--dataset", str(data), "--pretrained_model", str(tmp_path / "p2c"), "--faceid_weights",
         str(tmp_path / "mfn"), "--img_size", "32", "--n_dis_global", "5", "--n_dis_local", "4", "-q"], runs,
        resume_at=2, total=4, nets=("genA2B", "disGA"))
    assert "fine-tuning from" in ref.stdout and "genA2B, genB2A" in ref.stdout
    assert "photo2cartoon" in ref.stdout and "(graph mode)" in ref.stdout
    assert "face-ID loss off" not in ref.stdout
    history = run_history(runs / "straight")
    assert all(h[3]["G_faceid"] > 1e-4 for h in history), history          # the face-ID term is on
    meta = json.loads((runs / "straight" / "model" / "model.json").read_text())
    assert meta["arch"] == "photo2cartoon" and meta["networks"]["genA2B"]["model"] == "ugatit_p2c_generator"
    # the generators started from the converted weights: 4 Adam steps of lr 1e-4 move a weight by < 1e-3
    start = ms.load_checkpoint(str(tmp_path / "p2c" / "genA2B.ckpt"))
    end = ms.load_checkpoint(str(runs / "straight" / "model" / "genA2B.ckpt"))
    moved = max(float(np.abs(end[k].asnumpy() - start[k].asnumpy()).max()) for k in start)
    assert moved < 1e-3, moved
