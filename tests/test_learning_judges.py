"""The learning tests' judges (tests/learning.py) judged themselves: an output that ignores its input (the best
constant image), the identity and noise must fail each of them, the true mapping must pass."""
import numpy as np

from tests.helpers import DIGIT_ATTRS, digit_attribute_classifier, render_digit
from tests.learning import best_constant, judge_attribute, judge_translation, to_uint8, to_unit


def test_translation_judge_fails_a_constant_image_the_identity_and_noise(digit_domains, digit_pairs):
    for _, test_a, test_b in (digit_domains, digit_pairs):
        x, truth = to_unit(test_a), to_unit(test_b)
        noise = np.random.default_rng(0).uniform(-1, 1, truth.shape)
        for name, out in (("constant", best_constant(truth)), ("identity", x), ("noise", noise),
                          ("dark green", np.broadcast_to(np.array([-1, -0.6, -1]).reshape(1, 3, 1, 1), truth.shape))):
            v = judge_translation(out, x, truth, untrained_output=noise)
            assert not v.passed, (name, str(v))
        assert judge_translation(truth, x, truth, untrained_output=noise).passed
        # a generator halfway to the truth passes too; the judge is not asking for perfection
        assert judge_translation(0.7 * truth + 0.3 * best_constant(truth), x, truth, untrained_output=noise).passed


def test_attribute_judge_fails_constant_and_identity_per_attribute(digit_attributes):
    _, grays, attrs = digit_attributes
    classify = digit_attribute_classifier(32)
    x_img = np.stack([render_digit(g, a) for g, a in zip(grays, attrs)])
    as_is = classify(x_img)
    const = classify(to_uint8(best_constant(to_unit(x_img))))
    for k in range(len(DIGIT_ATTRS)):
        target = attrs.copy()
        target[:, k] = 1 - target[:, k]
        truth = classify(np.stack([render_digit(g, t) for g, t in zip(grays, target)]))
        base = {"identity": as_is[:, k], "constant": const[:, k]}
        assert not judge_attribute(as_is[:, k], target[:, k], base).passed           # no edit
        assert not judge_attribute(const[:, k], target[:, k], base).passed           # a constant image
        assert judge_attribute(truth[:, k], target[:, k], base).passed, DIGIT_ATTRS[k]   # the true edit
