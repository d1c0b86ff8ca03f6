"""Fixtures every test file shares: MindSpore's execution mode (restored after each test) and the offline toy
datasets (built once per session, read-only for the tests)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# test.py's compiled-graph cache goes to a folder of this session's, never the user's (inherited by the
# subprocesses the CLI tests start)
if "FACEGAN_COMPILE_CACHE_DIR" not in os.environ:
    import tempfile
    os.environ["FACEGAN_COMPILE_CACHE_DIR"] = tempfile.mkdtemp(prefix="facegan-compile-cache-")

from core import runtime  # noqa: E402  (environment defaults before any MindSpore op)

runtime.configure(mode="graph", device_target="CPU")

import mindspore as ms  # noqa: E402

MODES = {"graph": ms.GRAPH_MODE, "pynative": ms.PYNATIVE_MODE}


def _set_mode(name):
    ms.set_context(mode=MODES[name])


@pytest.fixture(autouse=True)
def _restore_mode():
    """Every test starts in graph mode and leaves the context as it found it."""
    before = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=before)


@pytest.fixture(params=list(MODES))
def mode(request):
    """Run the test in GRAPH_MODE and in PYNATIVE_MODE (the context is restored afterwards)."""
    _set_mode(request.param)
    return request.param


@pytest.fixture(scope="session")
def digit_domains(tmp_path_factory):
    """Unpaired toy domains from sklearn's digits: (root with trainA/trainB/testA/testB, test A images, their
    true B images); see tests.helpers.make_digit_domains."""
    from tests.helpers import make_digit_domains
    root = tmp_path_factory.mktemp("digit_domains") / "digits"
    test_a, test_b = make_digit_domains(str(root), size=32)
    return root, test_a, test_b


@pytest.fixture(scope="session")
def digit_pairs(tmp_path_factory):
    """Paired toy data (side-by-side A|B in train/ and test/): (root, test A, test B)."""
    from tests.helpers import make_digit_pairs
    root = tmp_path_factory.mktemp("digit_pairs") / "pairs"
    test_a, test_b = make_digit_pairs(str(root), size=32)
    return root, test_a, test_b


@pytest.fixture(scope="session")
def digit_attributes(tmp_path_factory):
    """A toy attribute set in CelebA's layout: (root, test grays, test attributes)."""
    from tests.helpers import make_digit_attributes
    root = tmp_path_factory.mktemp("digit_attributes") / "toy"
    grays, attrs = make_digit_attributes(str(root), size=32)
    return root, grays, attrs


# The suite's two workers (pytest.ini: --dist worksteal) each start on half of the collected tests and steal
# pending ones from the other when idle: the longest files go first, so no long test starts at the end.
# Rough seconds per file on the 2-core CI machine; a file not listed is short.
FILE_SECONDS = {
    "test_train_stargan.py": 330, "test_train_ugatit.py": 330, "test_train_stgan.py": 310,
    "test_train_photo2cartoon.py": 270, "test_parity.py": 220, "test_export.py": 240, "test_eval.py": 200,
    "test_train_cyclegan.py": 170, "test_output_faults.py": 170, "test_kernels.py": 150,
    "test_train_dcgan.py": 110, "test_convert.py": 100, "test_train_cgan.py": 90, "test_inference.py": 70,
    "test_attr_accuracy.py": 60, "test_train_spade.py": 200, "test_spade.py": 50,
    "test_distributed.py": 220, "test_amp.py": 40, "test_web_demo.py": 60,
}


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: -FILE_SECONDS.get(os.path.basename(str(item.fspath)), 0))
