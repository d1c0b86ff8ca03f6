#!/usr/bin/env python
"""MindSpore vs PyTorch on the same machine, in the same run.

  .venv/bin/python bench/run.py [--repeat 5] [--tasks p2c_infer_b1,p2c_infer_b4,ugatit_train_b1] [--out bench/results]

One long-lived process per side (MindSpore GRAPH_MODE / PyTorch eager, both 2 threads) builds each workload
once, warms it up (excluded), then the parent alternates single timed runs between the two sides, so both
see the same machine load. Identical inputs and weights: the PyTorch side uses the reference networks of the
tests (torch_refs/), and the MindSpore side receives the same random weights through the strict
conversion table. Reported per workload: median and min-max of the runs, peak RSS of each process, achieved
GFLOP/s (FLOPs counted once by torch's FlopCounterMode on the reference), and the ratio MindSpore / PyTorch.
A large fp32 matmul (4096^3, PyTorch) gives the machine's practical ceiling. The face front end (framework-
independent) is timed per stage. Output: a Markdown table on stdout and in OUT/latest.md, and OUT/latest.json.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = {
    "p2c_infer_b1": "photo2cartoon generator inference, 256 px, batch 1 (light, ngf 32)",
    "p2c_infer_b4": "photo2cartoon generator inference, 256 px, batch 4",
    "ugatit_train_b1": "U-GAT-IT training iteration (photo2cartoon arch), 256 px, batch 1, all six nets (D step + G step)",
    "cyclegan_train_b1": "CycleGAN training iteration (resnet_9blocks, basic D, instance norm, lsgan), 256 px, batch 1, "
                         "G_A G_B D_A D_B (G step + D step)",
    "stgan_train_b32": "STGAN training iteration (13 attributes, dim 64, 5 layers, STU), 128 px, batch 32: "
                       "5 WGAN-GP D steps + 1 G step",
    "stargan_train_b4": "StarGAN training iteration (5 CelebA domains, conv_dim 64, 6 blocks, D 6 layers), 128 px, "
                        "batch 4: 5 WGAN-GP D steps + 1 G step",
    "fid_features_b50": "FID Inception pool3 features (pytorch-fid's network and resizing), 50 images of 128 px "
                        "resized to 299, inference",
    "dcgan_train_b64": "DCGAN training iteration (nz 100, ngf = ndf = 64, RGB), 64 px, batch 64: D step + G step",
    "spade_train_256x512_b1": "SPADE training iteration, Cityscapes' shape (256 x 512, 35 labels + instance edges, "
                              "ngf = ndf = 64, 2 scales of D, VGG19 loss), batch 1: G step + D step",
}


# ------------------------------------------------------------------------------------------------ child
def _child(side):
    sys.path.insert(0, ROOT)
    import resource
    import numpy as np
    import torch
    torch.set_num_threads(2)
    from torch_refs.weights import randomize_torch
    from torch_refs.ugatit_ref import DiscriminatorRef, P2CGeneratorRef
    if side == "ms":
        from core import runtime
        runtime.configure("graph", "CPU", threads=2)
        import mindspore as ms
    built = {}

    def torch_nets(seed=0):
        nets = {"genA2B": P2CGeneratorRef(32, 256, True), "genB2A": P2CGeneratorRef(32, 256, True),
                "disGA": DiscriminatorRef(3, 32, 7), "disGB": DiscriminatorRef(3, 32, 7),
                "disLA": DiscriminatorRef(3, 32, 5), "disLB": DiscriminatorRef(3, 32, 5)}
        for i, n in enumerate(nets.values()):
            randomize_torch(n, seed + i)
        return nets

    def ms_trainer(family, cfg, tn, rules_of):
        """The engine for `family` with the torch nets' weights (through rules_of(name, net)), in train mode."""
        from families import get_family
        from torch_refs.weights import load_into_ms, torch_state_numpy
        from training.engine import GANTrainer
        fam = get_family(family)
        cfg = dict(fam.defaults(fam.default_arch), **cfg)
        nets = fam.build_nets(cfg)
        for name, net in nets.items():
            load_into_ms(net, {f"{name}.{k}": v for k, v in torch_state_numpy(tn[name]).items()}, rules_of(name, net))
        tr = GANTrainer(fam, cfg, "/tmp/bench_run_unused", nets, None)
        for n in nets.values():
            n.set_train(True)
        return tr

    def inference(ref, x, model, cfg, rules_of):
        """(run, (ref, inputs)) of an eval-mode forward of `ref` (torch side) or of the registry's `model` with
        its weights (MindSpore side, CPU kernels in); rules_of(net) -> key rules, or None for same names."""
        if side == "torch":
            xt = torch.from_numpy(x)

            def run():
                with torch.no_grad():
                    ref(xt)[0].sum().item()
            return run, (ref, (xt,))
        import kernels
        import models
        from torch_refs.weights import load_into_ms, torch_state_numpy
        net = models.create_model(model, **cfg)
        load_into_ms(net, torch_state_numpy(ref), rules_of(net) if rules_of else None)
        kernels.accelerate(net)
        net.set_train(False)
        xm = ms.Tensor(x)
        return (lambda: net(xm)[0].asnumpy()), None

    def build(task):
        rng = np.random.default_rng(0)
        if task.startswith("p2c_infer"):
            b = 4 if task.endswith("b4") else 1
            x = rng.uniform(-1, 1, (b, 3, 256, 256)).astype(np.float32)
            ref = randomize_torch(P2CGeneratorRef(32, 256, True)).eval()
            return inference(ref, x, "ugatit_p2c_generator", dict(ngf=32, img_size=256, light=True), None)
        if task == "ugatit_train_b1":
            a = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
            bb = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
            tn = torch_nets()
            if side == "torch":
                return _torch_train_step(tn, torch.from_numpy(a), torch.from_numpy(bb)), None
            from families import get_family
            fam = get_family("ugatit")
            from training.engine import GANTrainer
            from torch_refs.weights import torch_state_numpy
            cfg = dict(fam.defaults("photo2cartoon"), n_blocks=4, iterations=1000,
                       decay_start=500, mode="graph", faceid_weights=None)
            nets = fam.build_nets(cfg)
            for name, net in nets.items():
                sd = torch_state_numpy(tn[name])
                for p in net.get_parameters():
                    p.set_data(ms.Tensor(sd[p.name[len(name) + 1:]]))
            tr = GANTrainer(fam, cfg, "/tmp/bench_run_unused", nets, None)
            for n in nets.values():
                n.set_train(True)
            am, bm = ms.Tensor(a), ms.Tensor(bb)

            def run():
                tr.discriminator_step((am, bm))
                g, _ = tr.g_step(am, bm)
                g.asnumpy()
            return run, None
        if task == "cyclegan_train_b1":
            a = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
            bb = rng.uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)
            tn = cyclegan_torch_nets()
            if side == "torch":
                return _torch_cyclegan_step(tn, torch.from_numpy(a), torch.from_numpy(bb)), None
            from models.cyclegan import torch_key_rules
            tr = ms_trainer("cyclegan", dict(iterations=1000, decay_start=500, mode="graph"), tn,
                            lambda name, net: torch_key_rules("instance"))
            inputs = (ms.Tensor(a), ms.Tensor(bb), ms.Tensor(np.full((1, 2), 0.5, np.float32)))

            def run():
                tr.iteration_step([inputs])[2].asnumpy()
            return run, None
        if task == "stgan_train_b32":
            from torch_refs.stgan_ref import STGANDiscriminatorRef, STGANGeneratorRef
            x = rng.uniform(-1, 1, (32, 3, 128, 128)).astype(np.float32)
            a = rng.integers(0, 2, (32, 13)).astype(np.float32)
            b = a[rng.permutation(32)]
            alpha = rng.random(32).astype(np.float32)
            tn = {"G": randomize_torch(STGANGeneratorRef(), 0), "D": randomize_torch(STGANDiscriminatorRef(), 1)}
            if side == "torch":
                return _torch_stgan_step(tn, *(torch.from_numpy(v) for v in (x, a, b, alpha))), None
            from models.cyclegan import batchnorm_prefixes, torch_key_rules
            tr = ms_trainer("stgan", dict(iterations=1000, decay_start=500, mode="graph"), tn, lambda name, net:
                            torch_key_rules("batch", [f"{name}.{p}" for p in batchnorm_prefixes(net)]))
            inputs = tuple(ms.Tensor(v) for v in (x, a, b, alpha))

            def run():
                tr.iteration_step([inputs] * 5)[2].asnumpy()
            return run, None
        if task == "stargan_train_b4":
            from torch_refs.stargan_ref import StarGANDiscriminatorRef, StarGANGeneratorRef
            x = rng.uniform(-1, 1, (4, 3, 128, 128)).astype(np.float32)
            a = rng.integers(0, 2, (4, 5)).astype(np.float32)
            b = a[rng.permutation(4)]
            alpha = rng.random(4).astype(np.float32)
            tn = {"G": randomize_torch(StarGANGeneratorRef(), 0), "D": randomize_torch(StarGANDiscriminatorRef(), 1)}
            if side == "torch":
                return _torch_stargan_step(tn, *(torch.from_numpy(v) for v in (x, a, b, alpha))), None
            from models.stargan import TORCH_KEY_RULES
            tr = ms_trainer("stargan", dict(iterations=1000, decay_start=500, mode="graph", label_mode="attributes"),
                            tn, lambda name, net: TORCH_KEY_RULES)
            inputs = tuple(ms.Tensor(v) for v in (x, a, b, alpha))

            def run():
                tr.iteration_step([inputs] * 5)[2].asnumpy()
            return run, None
        if task == "dcgan_train_b64":
            from torch_refs.dcgan_ref import DCGANDiscriminatorRef, DCGANGeneratorRef
            x = rng.uniform(-1, 1, (64, 3, 64, 64)).astype(np.float32)
            z = rng.standard_normal((64, 100, 1, 1)).astype(np.float32)
            tn = {"G": randomize_torch(DCGANGeneratorRef(), 0), "D": randomize_torch(DCGANDiscriminatorRef(), 1)}
            if side == "torch":
                return _torch_dcgan_step(tn, torch.from_numpy(x), torch.from_numpy(z)), None
            from models.dcgan import torch_key_rules
            tr = ms_trainer("dcgan", dict(iterations=1000, decay_start=1000, mode="graph", nc=3), tn,
                            lambda name, net: torch_key_rules(net, f"{name}."))
            inputs = (ms.Tensor(x), ms.Tensor(z))

            def run():
                tr.iteration_step([inputs])[2].asnumpy()
            return run, None
        if task == "spade_train_256x512_b1":
            from torch_refs.spade_ref import MultiscaleDiscriminatorRef, SPADEGeneratorRef, VGG19Ref
            seg = np.zeros((1, 36, 256, 512), np.float32)
            classes = rng.integers(0, 35, (16, 32))
            seg[0, classes.repeat(16, 0).repeat(16, 1), np.arange(256)[:, None], np.arange(512)[None]] = 1.0
            seg[0, 35] = rng.random((256, 512)) < 0.05           # the instance edge map
            real = rng.uniform(-1, 1, (1, 3, 256, 512)).astype(np.float32)
            tn = {"G": randomize_torch(SPADEGeneratorRef(36, crop_size=512, aspect_ratio=2.0), 0),
                  "D": randomize_torch(MultiscaleDiscriminatorRef(39), 1)}
            vgg = randomize_torch(VGG19Ref(), 2)
            if side == "torch":
                return _torch_spade_step(tn, vgg, torch.from_numpy(seg), torch.from_numpy(real)), None
            import families.spade as fspade
            import models
            from models.spade import TORCH_KEY_RULES, vgg19_key_rules
            from torch_refs.weights import load_into_ms, torch_state_numpy
            ms_vgg = models.create_model("vgg19_features")
            load_into_ms(ms_vgg, torch_state_numpy(vgg), vgg19_key_rules())
            for p in ms_vgg.get_parameters():
                p.requires_grad = False
                p.name = "vgg." + p.name
            ms_vgg.set_train(False)
            fspade.load_vgg = lambda path: ms_vgg        # the family loads it from a model dir; same weights here
            tr = ms_trainer("spade", dict(iterations=1000, decay_start=1000, mode="graph", label_nc=35,
                                          no_instance=False, crop_size=512, aspect_ratio=2.0,
                                          vgg_weights="(in memory)"), tn, lambda name, net: TORCH_KEY_RULES)
            inputs = (ms.Tensor(seg), ms.Tensor(real))

            def run():
                tr.iteration_step([inputs])[2].asnumpy()
            return run, None
        if task == "fid_features_b50":
            from torch_refs.inception_ref import fid_reference
            x = rng.uniform(0, 1, (50, 3, 128, 128)).astype(np.float32)
            from models.inception import torch_key_rules
            return inference(fid_reference((3,), seed=0), x, "fid_inception", dict(output_blocks=(3,)),
                             torch_key_rules)
        raise ValueError(task)

    def cyclegan_torch_nets(seed=0):
        from torch_refs.cyclegan_ref import NLayerDiscriminatorRef, ResnetGeneratorRef
        nets = {"G_A": ResnetGeneratorRef(ngf=64, n_blocks=9), "G_B": ResnetGeneratorRef(ngf=64, n_blocks=9),
                "D_A": NLayerDiscriminatorRef(ndf=64, norm="instance"),
                "D_B": NLayerDiscriminatorRef(ndf=64, norm="instance")}
        for i, n in enumerate(nets.values()):
            randomize_torch(n, seed + i)
        return nets

    for line in sys.stdin:
        cmd = json.loads(line)
        task = cmd["task"]
        if cmd.get("op") == "flops":
            from torch.utils.flop_counter import FlopCounterMode
            _, extra = build(task) if task.startswith(("p2c", "fid")) else (None, None)
            if task.startswith(("p2c", "fid")):
                ref, args = extra
                with FlopCounterMode(display=False) as fc, torch.no_grad():
                    ref(*args)
                flops = fc.get_total_flops()
            elif task.startswith("spade"):
                flops = None     # FlopCounterMode at 256 x 512 with the VGG costs minutes; not counted
            elif task.startswith(("stgan", "stargan")):
                flops = None     # FlopCounterMode cannot follow autograd.grad(create_graph=True) (the penalty)
            elif task.startswith("dcgan"):
                from torch_refs.dcgan_ref import DCGANDiscriminatorRef, DCGANGeneratorRef
                run = _torch_dcgan_step({"G": DCGANGeneratorRef(), "D": DCGANDiscriminatorRef()},
                                        torch.randn(64, 3, 64, 64), torch.randn(64, 100, 1, 1))
                with FlopCounterMode(display=False) as fc:
                    run()
                flops = fc.get_total_flops()
            else:
                step = _torch_cyclegan_step if task.startswith("cyclegan") else _torch_train_step
                nets = cyclegan_torch_nets() if task.startswith("cyclegan") else torch_nets()
                run = step(nets, torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256))
                with FlopCounterMode(display=False) as fc:
                    run()
                flops = fc.get_total_flops()
            print(json.dumps({"flops": flops}), flush=True)
            continue
        if cmd.get("op") == "matmul":
            m = torch.randn(4096, 4096)
            m @ m
            rates = []
            for _ in range(5):   # one timing read 103 and 173 GFLOP/s in two runs of the same day
                t = time.perf_counter()
                m @ m
                rates.append(2 * 4096 ** 3 / (time.perf_counter() - t) / 1e9)
            print(json.dumps({"gflops": statistics.median(rates), "gflops_max": max(rates)}), flush=True)
            continue
        if task not in built:
            t0 = time.perf_counter()
            run, _ = build(task)
            run()
            run()          # warm-up (compile in GRAPH_MODE), excluded
            if side == "ms" and "_train_" in task:
                from core import runtime
                runtime.quiet_waiting_thread()   # as train.py's loop does after its first iteration
            built[task] = run
            print(json.dumps({"warmup_s": time.perf_counter() - t0,
                              "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)
            continue
        t = time.perf_counter()
        built[task]()
        dt = time.perf_counter() - t
        print(json.dumps({"s": dt, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), flush=True)


def _torch_train_step(nets, a, b):
    """The same U-GAT-IT iteration in PyTorch: D step (LSGAN), then G step (adv + cycle + identity + CAM)."""
    import itertools
    import torch
    import torch.nn.functional as F
    g_opt = torch.optim.Adam(itertools.chain(nets["genA2B"].parameters(), nets["genB2A"].parameters()),
                             lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    d_opt = torch.optim.Adam(itertools.chain(*(nets[k].parameters() for k in ("disGA", "disGB", "disLA", "disLB"))),
                             lr=1e-4, betas=(0.5, 0.999), weight_decay=1e-4)
    for n in nets.values():
        n.train()
    gA, gB = nets["genA2B"], nets["genB2A"]
    mse = lambda x, t: F.mse_loss(x, torch.full_like(x, t))  # noqa: E731
    bce = lambda x, t: F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))  # noqa: E731

    def d_pair(real, fake, d):
        r, rc, _ = d(real)
        f, fc, _ = d(fake)
        return mse(r, 1) + mse(f, 0) + mse(rc, 1) + mse(fc, 0)

    def adv(fake, dg, dl):
        g, gc, _ = dg(fake)
        l, lc, _ = dl(fake)
        return mse(g, 1) + mse(gc, 1) + mse(l, 1) + mse(lc, 1)

    def step():
        d_opt.zero_grad()
        with torch.no_grad():
            fab, fba = gA(a)[0], gB(b)[0]
        d = (d_pair(a, fba, nets["disGA"]) + d_pair(a, fba, nets["disLA"]) + d_pair(b, fab, nets["disGB"])
             + d_pair(b, fab, nets["disLB"]))
        d.backward()
        d_opt.step()
        g_opt.zero_grad()
        fab, fab_cam, _ = gA(a)
        fba, fba_cam, _ = gB(b)
        faba, fbab = gB(fab)[0], gA(fba)[0]
        faa, faa_cam, _ = gB(a)
        fbb, fbb_cam, _ = gA(b)
        g = (adv(fba, nets["disGA"], nets["disLA"]) + adv(fab, nets["disGB"], nets["disLB"])
             + 50 * (F.l1_loss(faba, a) + F.l1_loss(fbab, b)) + 10 * (F.l1_loss(faa, a) + F.l1_loss(fbb, b))
             + 1000 * (bce(fba_cam, 1) + bce(faa_cam, 0) + bce(fab_cam, 1) + bce(fbb_cam, 0)))
        g.backward()
        g_opt.step()
        with torch.no_grad():
            for n in (gA, gB):
                for name, p in n.named_parameters():
                    if name.rsplit(".", 1)[-1] in ("rho", "w_gamma", "w_beta"):
                        p.clamp_(0, 1)
        return g.item()
    return step


def _torch_cyclegan_step(nets, a, b):
    """The original's CycleGAN iteration: G step (adv lsgan + cycle 10 + identity 0.5 x 10, D frozen), then the
    D step on the same fakes, each D loss x 0.5 (the pool returns the newest fake while it fills)."""
    import itertools
    import torch
    import torch.nn.functional as F
    gA, gB, dA, dB = nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"]
    g_opt = torch.optim.Adam(itertools.chain(gA.parameters(), gB.parameters()), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(itertools.chain(dA.parameters(), dB.parameters()), lr=2e-4, betas=(0.5, 0.999))
    for n in nets.values():
        n.train()
    mse = lambda x, t: F.mse_loss(x, torch.full_like(x, t))  # noqa: E731

    def step():
        fake_b, fake_a = gA(a), gB(b)
        rec_a, rec_b = gB(fake_b), gA(fake_a)
        idt_a, idt_b = gA(b), gB(a)
        for p in itertools.chain(dA.parameters(), dB.parameters()):
            p.requires_grad_(False)
        g_opt.zero_grad()
        g = (mse(dA(fake_b), 1) + mse(dB(fake_a), 1) + 10 * F.l1_loss(rec_a, a) + 10 * F.l1_loss(rec_b, b)
             + 5 * F.l1_loss(idt_a, b) + 5 * F.l1_loss(idt_b, a))
        g.backward()
        g_opt.step()
        for p in itertools.chain(dA.parameters(), dB.parameters()):
            p.requires_grad_(True)
        d_opt.zero_grad()
        d = (0.5 * (mse(dA(b), 1) + mse(dA(fake_b.detach()), 0))
             + 0.5 * (mse(dB(a), 1) + mse(dB(fake_a.detach()), 0)))
        d.backward()
        d_opt.step()
        return g.item()
    return step


def _torch_stgan_step(nets, x, a, b, alpha, n_critic=5):
    """One STGAN iteration as the engine runs it: 5 x (fake without grad, WGAN-GP D step with attribute BCE),
    then the G step (adversarial, attribute BCE x 10, reconstruction L1 x 100)."""
    import torch
    import torch.nn.functional as F
    G, D = nets["G"], nets["D"]
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    G.train()
    D.train()
    diff = (b * 2 - 1) * 0.5 - (a * 2 - 1) * 0.5
    zero = torch.zeros_like(diff)

    def step():
        for _ in range(n_critic):
            with torch.no_grad():
                fake = G(x, diff)
            d_opt.zero_grad()
            adv_r, att_r = D(x)
            adv_f, _ = D(fake)
            al = alpha.view(-1, 1, 1, 1)
            x_hat = (al * x + (1 - al) * fake).requires_grad_(True)
            out = D(x_hat)[0]
            g = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
            gp = ((g.flatten(1).norm(2, dim=1) + 1e-16 - 1) ** 2).mean()
            d = adv_f.mean() - adv_r.mean() + 10 * gp + F.binary_cross_entropy_with_logits(att_r, a)
            d.backward()
            d_opt.step()
        g_opt.zero_grad()
        fake = G(x, diff)
        rec = G(x, zero)
        adv, att = D(fake)
        loss = -adv.mean() + 10 * F.binary_cross_entropy_with_logits(att, b) + 100 * F.l1_loss(rec, x)
        loss.backward()
        g_opt.step()
        return loss.item()
    return step


def _torch_stargan_step(nets, x, a, b, alpha, n_critic=5):
    """One StarGAN iteration as the engine runs it (and as yunjey/stargan's solver does, 5 of its iterations):
    5 x (fake without grad, WGAN-GP D step with domain BCE), then the G step (adversarial, domain BCE,
    reconstruction L1 x 10)."""
    import torch
    import torch.nn.functional as F
    G, D = nets["G"], nets["D"]
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.5, 0.999))
    G.train()
    D.train()

    def cls(logit, target):
        return F.binary_cross_entropy_with_logits(logit, target, reduction="sum") / logit.size(0)

    def step():
        for _ in range(n_critic):
            with torch.no_grad():
                fake = G(x, b)
            d_opt.zero_grad()
            src_r, cls_r = D(x)
            src_f, _ = D(fake)
            al = alpha.view(-1, 1, 1, 1)
            x_hat = (al * x + (1 - al) * fake).requires_grad_(True)
            out = D(x_hat)[0]
            g = torch.autograd.grad(out, x_hat, torch.ones_like(out), create_graph=True)[0]
            gp = ((g.flatten(1).norm(2, dim=1) + 1e-16 - 1) ** 2).mean()
            d = src_f.mean() - src_r.mean() + cls(cls_r, a) + 10 * gp
            d.backward()
            d_opt.step()
        g_opt.zero_grad()
        fake = G(x, b)
        src, c = D(fake)
        loss = -src.mean() + cls(c, b) + 10 * F.l1_loss(G(fake, a), x)
        loss.backward()
        g_opt.step()
        return loss.item()
    return step


def _torch_dcgan_step(nets, x, z):
    """One pytorch/examples DCGAN iteration: D on the real batch and on G(z).detach() (BCE), then G on the
    same fake with target real."""
    import torch
    G, D = nets["G"], nets["D"]
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = torch.nn.BCELoss()
    G.train()
    D.train()
    ones, zeros = torch.ones(x.shape[0]), torch.zeros(x.shape[0])

    def step():
        d_opt.zero_grad()
        fake = G(z)
        d = bce(D(x), ones) + bce(D(fake.detach()), zeros)
        d.backward()
        d_opt.step()
        g_opt.zero_grad()
        g = bce(D(fake), ones)
        g.backward()
        g_opt.step()
        return g.item()
    return step


def _torch_spade_step(nets, vgg, seg, real):
    """One NVlabs/SPADE iteration (pix2pix_trainer): the generator step (hinge, feature matching 10, VGG 10), then
    the discriminator step on a regenerated fake (no gradient); TTUR Adam: G lr 1e-4, D lr 4e-4, betas (0, 0.9)."""
    import torch
    import torch.nn.functional as F
    G, D = nets["G"], nets["D"]
    for p in vgg.parameters():
        p.requires_grad_(False)
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    d_opt = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    G.train()
    D.train()
    vgg.eval()
    per = 5

    def step():
        g_opt.zero_grad()
        fake = G(seg)
        feats = D(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0))
        scales = [feats[i * per:(i + 1) * per] for i in range(2)]
        loss = sum(-s[-1][:1].mean() for s in scales) / 2
        loss = loss + sum(F.l1_loss(f[:1], f[1:].detach()) * 5.0 for s in scales for f in s[:-1])
        vf, vr = vgg(fake), vgg(real)
        loss = loss + sum(w * F.l1_loss(a, b.detach()) for w, a, b in
                          zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), vf, vr)) * 10.0
        loss.backward()
        g_opt.step()
        d_opt.zero_grad()
        with torch.no_grad():
            fake = G(seg)
        feats = D(torch.cat([torch.cat([seg, fake], 1), torch.cat([seg, real], 1)], 0))
        scales = [feats[i * per:(i + 1) * per] for i in range(2)]
        d = sum(F.relu(1 + s[-1][:1]).mean() + F.relu(1 - s[-1][1:]).mean() for s in scales) / 2
        d.backward()
        d_opt.step()
        return loss.item()
    return step


# ------------------------------------------------------------------------------------------------ parent
def _front_end_stages(repeat):
    sys.path.insert(0, ROOT)
    from preprocess.align import crop, rotate
    from data.images import read_rgb
    from preprocess.pipeline import FacePipeline
    from preprocess.segment import composite_on_white
    pipe = FacePipeline()
    rgb = read_rgb(os.path.join(ROOT, "dataset", "samples", "astronaut.jpg"))
    pipe.process(rgb)
    stages = {k: [] for k in ("detect (dlib HOG)", "68 landmarks (dlib)", "rotate + crop",
                              "segment (selfie tflite)", "composite + resize", "total")}
    import cv2
    for _ in range(repeat):
        t0 = time.perf_counter()
        box = pipe.detect(rgb)[0]
        t1 = time.perf_counter()
        pts = pipe.landmarks(rgb, box)
        t2 = time.perf_counter()
        face, _ = crop(*rotate(rgb, pts))
        t3 = time.perf_counter()
        alpha = pipe.segment(face)
        t4 = time.perf_counter()
        composite_on_white(cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA),
                           cv2.resize(alpha, (256, 256), interpolation=cv2.INTER_AREA))
        t5 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
            stages[k].append(v)
    return {k: statistics.median(v) for k, v in stages.items()}, rgb.shape


def _cpu_model():
    """The CPU's name and widest vector ISA: the native kernels are tiled per ISA (AVX-512 or AVX2)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or "cpu"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "cpu")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{name}, {isa}"


def _commit():
    """HEAD's short hash, with "+changes" when tracked files differ from it; None outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    try:
        head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return (head + ("+changes" if dirty else "")) or None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--sequential", action="store_true",
                    help="one side at a time, each child stopped before the other starts (for workloads whose "
                         "two processes do not fit in memory together); runs no longer alternate")
    ap.add_argument("--child", choices=["ms", "torch"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return _child(a.child)
    tasks = [t for t in a.tasks.split(",") if t]
    env = dict(os.environ, PYTHONUNBUFFERED="1", GLOG_v="3")
    os.makedirs(a.out, exist_ok=True)
    logs = {s: open(os.path.join(a.out, f"child_{s}.log"), "w") for s in ("ms", "torch")}
    procs = {}

    def start(side):
        procs[side] = subprocess.Popen([sys.executable, __file__, "--child", side], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=logs[side], text=True, env=env, cwd=ROOT)

    def stop(side):
        p = procs.pop(side)
        p.stdin.close()
        p.wait()

    for side in ("ms", "torch"):
        if not a.sequential or side == "torch":
            start(side)

    def ask(side, **cmd):
        if side not in procs:
            start(side)
        p = procs[side]
        p.stdin.write(json.dumps(cmd) + "\n")
        p.stdin.flush()
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"the {side} benchmark process died on {cmd} (see {logs[side].name})")
        return json.loads(line)

    results = {"date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
               f"{_cpu_model()}", "python": platform.python_version(), "commit": _commit(), "tasks": {}}
    mm = ask("torch", task="", op="matmul")
    results["matmul_4096_gflops_torch"], results["matmul_4096_gflops_torch_max"] = mm["gflops"], mm["gflops_max"]
    for task in tasks:
        flops = ask("torch", task=task, op="flops")["flops"]
        times = {"ms": [], "torch": []}
        rss, warm = {}, {}
        if a.sequential:
            for s in ("torch", "ms"):
                if s not in procs:
                    start(s)
                warm[s] = ask(s, task=task)
                for _ in range(a.repeat):
                    r = ask(s, task=task)
                    times[s].append(r["s"])
                    rss[s] = r["rss_mb"]
                stop(s)
        else:
            warm = {s: ask(s, task=task) for s in ("ms", "torch")}
            for _ in range(a.repeat):
                for s in ("ms", "torch"):
                    r = ask(s, task=task)
                    times[s].append(r["s"])
                    rss[s] = r["rss_mb"]
        row = {"desc": TASKS[task], "gflop": flops / 1e9 if flops else None}
        for s in ("ms", "torch"):
            med = statistics.median(times[s])
            row[s] = {"median_s": med, "min_s": min(times[s]), "max_s": max(times[s]), "runs": times[s],
                      "peak_rss_mb": rss[s], "gflops": flops / 1e9 / med if flops else None,
                      "warmup_s": warm[s]["warmup_s"]}
        row["ratio_ms_over_torch"] = row["ms"]["median_s"] / row["torch"]["median_s"]
        results["tasks"][task] = row
        print(f"{task}: MindSpore {row['ms']['median_s']:.3f}s, PyTorch {row['torch']['median_s']:.3f}s, "
              f"ratio {row['ratio_ms_over_torch']:.2f}", file=sys.stderr, flush=True)
    for side in list(procs):
        stop(side)
    try:   # after tasks that may have run for an hour: a front end that cannot start must not lose them
        fe, shape = _front_end_stages(max(5, a.repeat))
        results["front_end"] = {"image": f"astronaut.jpg {shape[1]}x{shape[0]}", "median_s": fe}
    except Exception as e:   # noqa: BLE001 (the model files are optional for the GAN rows)
        print(f"face front end not timed: {e}", file=sys.stderr, flush=True)
        results["front_end"] = {"error": str(e)}

    lines = [f"Measured {results['date']} at commit {results['commit']} on {results['machine']}, Python {results['python']}; "
             f"`bench/run.py --repeat {a.repeat}{' --sequential' if a.sequential else ''}`. PyTorch 4096^3 fp32 matmul: "
             f"{results['matmul_4096_gflops_torch']:.0f} GFLOP/s median of 5, best {results['matmul_4096_gflops_torch_max']:.0f} "
             "(the reference for the GFLOP/s columns, measured at the start of this run).", "",
             "| workload | GFLOP | MindSpore median (min-max) s | PyTorch median (min-max) s | MS / PT | MS GFLOP/s | PT GFLOP/s | peak RSS MS / PT MB |",
             "|---|---|---|---|---|---|---|---|"]
    def num(v):
        return "n/a" if v is None else f"{v:.1f}"
    for task, r in results["tasks"].items():
        m, t = r["ms"], r["torch"]
        lines.append(f"| {r['desc']} | {num(r['gflop'])} | {m['median_s']:.3f} ({m['min_s']:.3f}-{m['max_s']:.3f}) | "
                     f"{t['median_s']:.3f} ({t['min_s']:.3f}-{t['max_s']:.3f}) | **{r['ratio_ms_over_torch']:.2f}** | "
                     f"{num(m['gflops'])} | {num(t['gflops'])} | {m['peak_rss_mb']:.0f} / {t['peak_rss_mb']:.0f} |")
    fe = results["front_end"]
    lines += ["", f"Face front end not timed: {fe['error']}" if "error" in fe else
              f"Face front end per photo ({fe['image']}, warm, median): " +
              ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in fe["median_s"].items())]
    md = "\n".join(lines)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "latest.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(a.out, "latest.md"), "w") as f:
        f.write(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
