"Tests for `mapd.models` beyond the notebook's inline ones: errors, training, checkpoints, torchvision parity."
import importlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mapd.models import (MLP, MODELS, BasicBlock, Bottleneck, ResNet, SmallCNN, count_parameters, make_model,
                         resnet18, resnet50)

SHAPES = [(1, 28, 28), (3, 32, 32)]


def _torchvision():
    "torchvision's models module, or skip: it is optional and does not import with the CPU build of torch."
    try: return importlib.import_module("torchvision.models")
    except Exception as e: pytest.skip(f"torchvision not importable: {type(e).__name__}: {e}")


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape", SHAPES)
def test_output_shape(name, shape):
    model = make_model(name, shape, 7)
    assert model(torch.randn(2, *shape)).shape == (2, 7)


@pytest.mark.parametrize("fn, stem, k, n", [
    (resnet18, "imagenet", 1000, 11_689_512),
    (resnet50, "imagenet", 1000, 25_557_032),
    (resnet18, "cifar", 10, 11_173_962),
    (resnet50, "cifar", 10, 23_520_842),   # 25,557,032 - 7x7x3x64 + 3x3x3x64 - 2049x1000 + 2049x10
])
def test_resnet_parameter_counts(fn, stem, k, n):
    assert count_parameters(fn(k, stem=stem)) == n


def test_resnet_stems():
    x = torch.randn(2, 3, 64, 64)
    cifar, imagenet = resnet18(10, stem="cifar"), resnet18(10, stem="imagenet")
    assert cifar.conv1.kernel_size == (3, 3) and cifar.conv1.stride == (1, 1) and isinstance(cifar.maxpool, nn.Identity)
    assert imagenet.conv1.kernel_size == (7, 7) and imagenet.conv1.stride == (2, 2)
    assert isinstance(imagenet.maxpool, nn.MaxPool2d)
    # the CIFAR stem keeps full resolution into the first stage, the ImageNet stem divides it by 4
    feat = lambda m: m.maxpool(m.relu(m.bn1(m.conv1(x))))
    assert feat(cifar).shape[-1] == 64 and feat(imagenet).shape[-1] == 16
    assert resnet18(10).stem == "cifar" and resnet50(10).stem == "imagenet"  # defaults of the two constructors


def test_resnet50_is_v1_5():
    blocks = [m for m in resnet50(10).modules() if isinstance(m, Bottleneck)]
    assert len(blocks) == 16
    strided = [b for b in blocks if b.conv2.stride == (2, 2)]
    assert len(strided) == 3 and all(b.conv1.stride == (1, 1) and b.conv3.stride == (1, 1) for b in blocks)


def test_resnet_init_like_torchvision():
    torch.manual_seed(0)
    m = resnet18(10)
    w = m.layer3[0].conv1.weight  # 3x3, 128 -> 256: fan_out = 256 * 9
    assert abs(w.std().item() - (2 / (256 * 9)) ** 0.5) < 0.002
    assert torch.all(m.bn1.weight == 1) and torch.all(m.bn1.bias == 0)
    assert all(b.bn2.weight.abs().sum() == 0 for b in resnet18(10, zero_init_residual=True).modules()
               if isinstance(b, BasicBlock))
    assert all(b.bn3.weight.abs().sum() == 0 for b in resnet50(10, zero_init_residual=True).modules()
               if isinstance(b, Bottleneck))


@pytest.mark.parametrize("arch, fn", [("resnet18", resnet18), ("resnet50", resnet50)])
def test_matches_torchvision(arch, fn):
    tvm = _torchvision()
    torch.manual_seed(0)
    theirs = getattr(tvm, arch)(num_classes=1000).eval()
    ours = fn(1000, stem="imagenet").eval()
    assert count_parameters(ours) == count_parameters(theirs)
    ours.load_state_dict(theirs.state_dict())  # strict: the module names and shapes agree
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad(): torch.testing.assert_close(ours(x), theirs(x))
    # the modules are built and initialised in torchvision's order, so one seed gives the same weights
    torch.manual_seed(1); theirs = getattr(tvm, arch)(num_classes=10)
    torch.manual_seed(1); ours = fn(10, stem="imagenet")
    for (k, a), b in zip(theirs.state_dict().items(), ours.state_dict().values()): assert torch.equal(a, b), k


def test_make_model_errors():
    with pytest.raises(ValueError, match="unknown model 'vgg'; choose one of 'mlp', 'cnn', 'resnet18', 'resnet50'"):
        make_model("vgg", (1, 28, 28), 10)
    with pytest.raises(ValueError, match=r"in_shape must be \(C, H, W\) with positive integers, but is \(1, 0, 28\)"):
        make_model("mlp", (1, 0, 28), 10)
    with pytest.raises(TypeError, match="in_shape must be a"):
        make_model("mlp", 784, 10)
    with pytest.raises(ValueError, match="n_classes must be positive, but is 0"):
        make_model("cnn", (1, 28, 28), 0)
    with pytest.raises(ValueError, match="stem must be one of"):
        make_model("resnet18", (3, 32, 32), 10, stem="cifar10")
    with pytest.raises(TypeError):
        make_model("mlp", (1, 28, 28), 10, width=3)  # a keyword the model does not take is not swallowed


def test_make_model_passes_options():
    assert make_model("resnet50", (3, 65, 65), 10).stem == "imagenet"
    assert make_model("resnet50", (3, 64, 64), 10).stem == "cifar"
    assert make_model("resnet50", (3, 224, 224), 10, stem="cifar").stem == "cifar"
    assert make_model("resnet18", (1, 28, 28), 10).conv1.in_channels == 1
    assert make_model("cnn", (1, 28, 28), 10, width=8).head.in_features == 16 * 16
    assert make_model("cnn", (1, 28, 28), 10, width=8, grid=1).head.in_features == 16
    assert make_model("mlp", (1, 28, 28), 10, hidden=()).net[1].in_features == 784
    assert make_model("mlp", torch.Size([1, 28, 28]), 10).in_shape == (1, 28, 28)


def test_registry_takes_user_models(monkeypatch):
    monkeypatch.setitem(MODELS, "linear", lambda in_shape, n_classes: nn.Sequential(nn.Flatten(), nn.Linear(784, n_classes)))
    assert make_model("linear", (1, 28, 28), 3)(torch.randn(4, 1, 28, 28)).shape == (4, 3)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet18"])
def test_learns_a_batch(name):
    "A few SGD steps on one fixed batch lower its loss: gradients reach the weights."
    torch.manual_seed(0)
    model = make_model(name, (1, 16, 16), 4)
    x, y = torch.randn(16, 1, 16, 16), torch.arange(16) % 4
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(8):
        loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step(); losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
def test_state_dict_round_trip(name, tmp_path):
    torch.manual_seed(0)
    a = make_model(name, (3, 32, 32), 5).eval()
    torch.save(a.state_dict(), tmp_path / "m.pt")
    b = make_model(name, (3, 32, 32), 5).eval()
    b.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(): torch.testing.assert_close(a(x), b(x))


def test_per_example_losses_independent_of_batch():
    "In eval mode an example's logits do not depend on its batch, as the recorder's evaluation pass assumes."
    torch.manual_seed(0)
    for model in (SmallCNN((1, 28, 28), 10).eval(), MLP((1, 28, 28), 10).eval()):
        x = torch.randn(8, 1, 28, 28)
        with torch.no_grad(): torch.testing.assert_close(model(x)[3:4], model(x[3:4]), rtol=1e-4, atol=1e-5)


def test_smallcnn_accepts_any_layout():
    m = SmallCNN((3, 32, 32), 10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(): torch.testing.assert_close(m(x), m(x.contiguous(memory_format=torch.channels_last)))
    with pytest.raises(ValueError, match="width must be at least 2, but is 1"): SmallCNN((1, 28, 28), 10, width=1)


def test_resnet_rejects_bad_layers():
    with pytest.raises(ValueError, match=r"layers must give the blocks of 4 stages, but is \(2, 2\)"):
        ResNet(BasicBlock, (2, 2), 10)
