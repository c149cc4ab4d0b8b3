import torch
from torch import nn

from edgessl.data.augment import eval_view
from edgessl.deploy.classifier import build_classifier
from edgessl.deploy.pipeline import ClassifierBundle, deployable, load_bundle, save_bundle
from edgessl.eval.finetune import Classifier
from edgessl.eval.probe import ProbeHead
from edgessl.models import create_encoder


def test_folding_keeps_the_function_and_leaves_no_batchnorm_or_attention_scale():
    torch.manual_seed(0)
    encoder = create_encoder("tinynext_t", 32)
    for m in encoder.modules():  # non-trivial statistics, or folding errors would hide behind identity BatchNorms
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    head = ProbeHead(192, 10)
    x = torch.rand(4, 32, 32, 3) * 255
    reference, folded = build_classifier(encoder, head, fold=False), build_classifier(encoder, head)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), reference(x), rtol=1e-4, atol=1e-3)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert all(m.scale == 1.0 for m in folded.modules() if hasattr(m, "query"))


def test_a_fine_tuned_classifier_deploys_as_the_same_function_on_raw_pixels():
    torch.manual_seed(0)
    encoder = create_encoder("tinynext_t", 32)
    for m in encoder.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2)
    trained = Classifier(encoder, nn.Linear(encoder.feature_dim, 10)).eval()
    pixels = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    with torch.no_grad():
        reference = trained(eval_view(pixels))  # how `evaluate` shows a test image to the trained classifier
        torch.testing.assert_close(deployable(trained)(pixels.float()), reference, rtol=1e-4, atol=1e-3)


def test_a_saved_classifier_keeps_its_probe_stages_and_stage(tmp_path):
    torch.manual_seed(0)
    stages = ("stage3", "stage4")
    model = build_classifier(create_encoder("tinynext_t", 32), ProbeHead(288, 10), stages=stages)
    save_bundle(ClassifierBundle(model, [str(i) for i in range(10)], "data", 0.2, 0, "src", {"encoder": "tinynext_t"}, "finetune"), tmp_path / "c.pt")
    bundle = load_bundle(tmp_path / "c.pt")
    loaded = bundle.model
    x = torch.rand(2, 32, 32, 3) * 255
    assert loaded.stages == stages and bundle.stage == "finetune"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
