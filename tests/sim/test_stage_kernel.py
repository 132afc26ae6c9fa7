"""The power stage's compiled kernel computes what its Python source says: the same plant run with numba's JIT and
with NUMBA_DISABLE_JIT=1 (the functions as plain Python) ends in the same state and the same books."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RUN = r"""
import json, sys
sys.path.insert(0, %r)
from sim.plant.converter import PowerStage
from sim.plant.pv import PVSource
from sim.plant.system import Plant
from sim.plant.loads import DCLoad

class Bank:
    soc = 0.5
    def thevenin(self):
        return 26.4, 0.02
    def step(self, i, h):
        pass

st = PowerStage()
plant = Plant(st, PVSource.from_en50530(600.0, 60.0), battery=Bank(), load=DCLoad("constant_power", 40.0),
              irradiance=lambda t: 800.0 + 100.0 * t)
plant.settle()
st.f_sw_hz, st.backflow_on, st.enabled, st.duty = 39000.0, True, True, 0.45
v_boot = st.p.v_cc_v - st.p.v_f_boot_v
st.v_boot = v_boot
t = 0
for k in range(60):  # 0.3 s: a duty step every 5 ms, the bridge off for a while in the middle
    t += 5_000_000
    plant.advance_to(t)
    st.duty = 0.45 + 0.02 * ((k // 4) %% 3)
    st.enabled = not 20 <= k < 26
print(json.dumps([st.vc, st.il, st.vo, st.v_boot, plant.e_pv_j, plant.e_bat_in_j, plant.e_load_j,
                  sum(plant.e_loss_j.values()), plant.steps, st.bootstrap_violations]))
""" % ROOT


def _run(jit):
    env = dict(os.environ)
    if not jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    out = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_compiled_and_python_kernels_agree():
    compiled, python = _run(True), _run(False)
    assert compiled[8] == python[8] and compiled[8] > 100  # the same number of steps
    assert compiled[9] == python[9]
    for a, b in zip(compiled[:8], python[:8]):
        assert abs(a - b) <= 1e-9 * (1.0 + abs(b)), (compiled, python)
