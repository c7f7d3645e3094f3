"""tests/conftest.py under pytest-xdist, as ``tools/run_tests.sh`` runs the suite (``-n auto
--dist loadgroup``): a module's tests that share a module-scoped fixture run in one worker and
build it once, and each worker takes its share of the cores for torch's threads."""
import json
import os
import os.path as osp
import shutil
import textwrap

import pytest

from mmfrozen.testing import run_python

PROBE = textwrap.dedent('''
    import json
    import os

    import pytest
    import torch


    @pytest.fixture(scope='module')
    def built_once():
        with open(os.environ['PROBE_LOG'], 'a') as f:
            f.write(json.dumps(dict(fixture=os.environ['PYTEST_XDIST_WORKER'])) + '\\n')


    def _record(request):
        with open(os.environ['PROBE_LOG'], 'a') as f:
            f.write(json.dumps(dict(test=request.node.nodeid,
                                    worker=os.environ['PYTEST_XDIST_WORKER'],
                                    threads=torch.get_num_threads())) + '\\n')


    @pytest.mark.parametrize('i', range(6))
    def test_shared(built_once, request, i):
        _record(request)


    @pytest.mark.parametrize('i', range(6))
    def test_free(request, i):
        _record(request)
''')


@pytest.mark.runs
def test_xdist_groups_hold_and_workers_share_the_cores(tmp_path, repo_root, tool_env):
    """Two workers: every test of the module-scoped fixture in one worker (its node id carries
    the group, which pytest 9.2 with pytest-xdist 3.8 silently drops), the fixture built once,
    each worker on half the cores."""
    shutil.copy(osp.join(repo_root, 'tests', 'conftest.py'), tmp_path / 'conftest.py')
    (tmp_path / 'test_probe.py').write_text(PROBE)
    log = tmp_path / 'probe.jsonl'
    run_python(['-m', 'pytest', '-p', 'no:cacheprovider', '-n', '2',
                '--dist', 'loadgroup', '-q', '--rootdir', str(tmp_path),
                str(tmp_path / 'test_probe.py')],
               cwd=str(tmp_path), env=tool_env(PROBE_LOG=str(log)), timeout=300)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    built = [r['fixture'] for r in records if 'fixture' in r]
    ran = [r for r in records if 'test' in r]
    shared = [r for r in ran if '::test_shared' in r['test']]
    assert len(ran) == 12 and len(shared) == 6
    assert all(r['test'].endswith('@test_probe.py') for r in shared), shared
    assert len(built) == 1 and {r['worker'] for r in shared} == set(built)
    assert not any('@' in r['test'] for r in ran if r not in shared)
    cores = len(os.sched_getaffinity(0))
    assert {r['threads'] for r in ran} == {max(1, cores // 2)}
