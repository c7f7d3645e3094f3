"""The set-up's GPU check of mmcv's ops (mmfrozen.cuda_ops), on a machine without CUDA ops."""
import subprocess
import sys

import pytest
import torch
from mmfrozen.cuda_ops import check_cuda_ops, fix_instructions, mmcv_cuda_version


@pytest.mark.runs
def test_check_without_a_gpu_says_so_and_fails(repo_root, tool_env):
    ok, message = check_cuda_ops()
    assert torch.cuda.is_available() is False  # CI's machine; the GPU branch runs in gpu_check
    assert ok is False
    assert message.startswith('No GPU')
    proc = subprocess.run([sys.executable, '-m', 'mmfrozen.cuda_ops'], cwd=repo_root,
                          env=tool_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert '[mmfrozen.cuda_ops] No GPU' in proc.stdout


def test_instructions_for_mmcv_without_cuda_ops():
    # this machine's mmcv is built for the CPU: its instructions say how to get CUDA ops
    assert mmcv_cuda_version() is None
    text = fix_instructions()
    assert 'mmcv compiled with CUDA: no (CPU ops only)' in text
    assert 'FORCE_CUDA=1' in text and 'TORCH_CUDA_ARCH_LIST=' in text
    assert 'CUDA toolkit' in text and 'mmfrozen.torchvision_ops' in text
