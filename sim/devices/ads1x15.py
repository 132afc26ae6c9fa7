"""Register-level emulators of the TI ADS1115 / ADS1015 / TLA2024 I2C ADCs for the simulated board.

The real Adafruit drivers (adafruit_ads1x15, adafruit_tla202x) talk to these through the ``busio`` stand-in
(``i2c_write(data)`` / ``i2c_read(n)``), unmodified. Time comes from the board's SimClock: a conversion takes
the datasheet's time, the analog inputs are sampled inside the conversion window (at the plant state of that
instant), and the ALERT/RDY pin toggles at the simulated instants the datasheet gives.

Sources (TI datasheets; section numbers of the revisions named):

* ADS111x, SBAS444E (Dec 2024): 5.5 Electrical Characteristics (data-rate variation +-10 %), 6.1 Noise
  Performance (Table 6-1), 7.3.3 FSR and LSB size (Table 7-1), 7.3.5 Oscillator, 7.3.6 Output data rate and
  conversion time ("conversion time is equal to 1/DR"), 7.3.7 Digital comparator, 7.3.8 Conversion ready pin,
  7.3.9 SMBus alert response, 7.4.1 Reset and power-up, 7.4.2.1 Single-shot mode, 7.4.2.2 Continuous-conversion
  mode, 7.5.1.2 I2C general call, 7.5.2/7.5.3 register access, 7.5.4 Data format (output clips at 7FFFh/8000h),
  8.1 Register map (Tables 8-1 pointer, 8-3 config, 8-5 thresholds).
* ADS101x, SBAS473E (Jan 2018): same structure; 128..3300 SPS; 12-bit result left-justified (D[3:0] read 0);
  8.6.4 Lo_thresh/Hi_thresh: bits 3:0 are read-only (Lo reads 0h, Hi reads Fh); conversion-ready pin ~8 us pulse.
* TLA202x, SBAS846 (Nov 2017): two registers only (conversion data, configuration) behind the register pointer;
  conversion data D[3:0] "always reads back 0h"; config bits 4:0 RESERVED, R/W, reset 03h; no comparator and no
  ALERT/RDY pin; single-shot: "When conversion data are ready for retrieval, the OS bit is set to 1"; data rates
  128..3300 SPS; "the number of bytes that can be transmitted per transfer is unrestricted".

Modelling choices (where the datasheet is silent or ambiguous) are marked MODEL in the docstrings below.
"""

import math
import random

from sim.plant.frontend import observer_bw

# Config register fields (SBAS444E Table 8-3)
_OS = 0x8000
_MODE_SINGLE = 0x0100
_COMP_WINDOW = 0x0010
_COMP_POL_HIGH = 0x0008
_COMP_LAT = 0x0004
_COMP_QUE = 0x0003

# MUX[2:0] -> (AINP index, AINN index or None for GND) (SBAS444E Table 8-3)
_MUX = ((0, 1), (0, 3), (1, 3), (2, 3), (0, None), (1, None), (2, None), (3, None))

# PGA[2:0] -> +-FSR in volts (SBAS444E Table 7-1 / Table 8-3; codes 110b and 111b are also +-0.256 V)
_FSR = (6.144, 4.096, 2.048, 1.024, 0.512, 0.256, 0.256, 0.256)

WAKEUP_NS = 25_000  # "the device powers up in approximately 25 us" (SBAS444E 7.4.2.1)
RDY_PULSE_NS = 8_000  # "approximately 8-us conversion-ready pulse" (SBAS444E 7.3.8)


def _s16(v):
    return v - 0x10000 if v & 0x8000 else v


class ADS1x15Emulator:
    """Common core of the ADS1115 / ADS1015 / TLA2024 emulators (use a subclass).

    ``inputs``: four callables returning the voltage at AIN0..AIN3 (volts, referred to GND) at the current
    simulated time; they are called from scheduled clock events, so the plant is integrated up to the sampling
    instant. ``osc_error``: relative error of the internal oscillator; every conversion (and so the data rate)
    takes ``1/DR * (1 + osc_error)`` (positive = slower oscillator; the datasheet allows +-10 %, SBAS444E 5.5
    "Data rate variation"). ``noise``: add the datasheet's input-referred noise (ADS1115 only; see ``_sigma_v``).
    ``alert_pin``: SimBoard pin wired to ALERT/RDY (open drain with pull-up: reads high when released).

    Fault injection: ``present = False`` makes the device NACK (the busio stand-in raises OSError ENODEV);
    ``stuck = True`` freezes the conversion register (conversions still run and are counted).
    ``conversions`` counts completed conversions.

    Timing model:

    * Single-shot (MODE=1, power-down): writing OS=1 starts one conversion; it ends ``WAKEUP_NS`` (25 us) +
      ``1/DR*(1+osc_error)`` after the write (SBAS444E 7.4.2.1), then the device powers down again. Writing
      OS=1 while a conversion is ongoing has no effect (Table 8-3).
    * Continuous (MODE=0): conversions run back to back, each ``1/DR*(1+osc_error)`` long; the first starts
      25 us after the write that left power-down (MODEL: the datasheet states the wake-up time for single-shot
      only; we assume the same power-up). "When writing new configuration settings, the currently ongoing
      conversion completes with the previous configuration settings. Thereafter, continuous conversions with
      the new configuration settings start." (SBAS444E 7.4.2.2) -- so after a MUX change the first result of
      the new channel arrives up to two conversion periods later. ``continuous_restart=True`` instead aborts
      the ongoing conversion and restarts with the new settings at the write (not what the datasheet says;
      offered for experiments).
    * Sampling: MODEL: a delta-sigma conversion is a filtered average of the input over the conversion window;
      we take ONE sample of the inputs at the middle of the window (a scheduled clock event), which gives the
      right half-window group delay for slowly varying inputs at one plant evaluation per conversion. The
      result becomes visible in the conversion register at the end of the window.
    * OS bit (read): 0 while a conversion is in progress (from the starting write, wake-up included -- MODEL:
      a read within the 25 us wake-up is not possible below I2C high-speed mode anyway), 1 otherwise. In
      continuous mode the device is always converting, so OS reads 0.

    Cost: the conversion pipeline is advanced lazily on each bus access (a couple of integer compares); the
    clock carries one event per conversion (the mid-window sample, the only one that integrates the plant), plus
    the conversion end and the RDY pulse end when an ALERT pin is wired (scheduled with plant=False: the chip's
    own timing, so a firmware polling RDY costs no plant steps). No numpy, no allocation beyond the 2 returned bytes per read.
    """

    # --- per-chip constants (overridden by subclasses) ---
    NAME = "ADS1x15"
    BITS = 16
    DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
    HAS_COMPARATOR = True
    HAS_THRESHOLDS = True
    CONFIG_RESET = 0x8583
    LO_RESET = 0x8000
    HI_RESET = 0x7FFF
    THRESH_RO_MASK = 0x0000  # threshold bits that are read-only (ADS1015: bits 3:0)
    POINTER_MASK = 0x03  # ADS1x15: P[1:0]; bits 7:2 "always write 0" (MODEL: ignored, not decoded)
    NOISE_UVPP = None  # [DR code][PGA code] -> peak-to-peak input-referred noise (uV), or None

    present = True
    stuck = False

    def __init__(self, board, inputs, *, address=0x48, seed=0, osc_error=0.0, noise=True, alert_pin=None,
                 continuous_restart=False):
        if len(inputs) != 4:
            raise ValueError("inputs must be 4 callables (AIN0..AIN3)")
        if not -0.5 < osc_error < 0.5:
            raise ValueError("osc_error is a relative error (datasheet: +-0.10)")
        if alert_pin is not None and not self.HAS_COMPARATOR:
            raise ValueError("%s has no ALERT/RDY pin" % self.NAME)
        self.board = board
        self._clock = board.clock
        self.inputs = list(inputs)
        self.address = address
        self.noise = bool(noise)
        self.continuous_restart = bool(continuous_restart)
        self._rng = random.Random(seed)
        self.present = True
        self.stuck = False
        self._n_conv = 0
        shift = 16 - self.BITS
        self._shift = shift
        full = 1 << (self.BITS - 1)
        self._cmax = full - 1
        self._cmin = -full
        self._scale = tuple(full / f for f in _FSR)  # codes per volt
        self._osc_error = float(osc_error)
        self._t_ns = ()
        self._update_timing()
        self._sigma_v = self._noise_sigmas()
        self._alert_pin = None
        self._alert_level = True
        self.reset()
        if alert_pin is not None:
            self._alert_pin = board.pin(alert_pin).name
            board.set_input(self._alert_pin, source=self._alert_source)
            self._update_alert()

    # ------------------------------------------------------------------ configuration helpers
    @property
    def osc_error(self):
        return self._osc_error

    @osc_error.setter
    def osc_error(self, value):
        self._osc_error = float(value)
        self._update_timing()

    def _update_timing(self):
        k = 1e9 * (1.0 + self._osc_error)
        self._t_ns = tuple(int(round(k / dr)) for dr in self.DATA_RATES)

    def _noise_sigmas(self):
        """Gaussian sigma (volts) per [DR][PGA]: Vpp/6.6, the crest factor TI uses for Gaussian noise.

        MODEL: SBAS444E Table 6-1 lists uVRMS (uVPP). Its RMS column equals 1 LSB everywhere: the noise is
        below the resolution and TI rounds it up to one LSB (Table 6-2 gives 16 effective bits throughout), so
        it carries no information beyond "RMS noise <= 1 LSB". The peak-to-peak column does (e.g. 35.83 uVpp
        = 4.6 LSB at 860 SPS, +-0.256 V), so we derive sigma from it. Rows at exactly 1 LSB p-p are the
        quantization floor; sigma = LSB/6.6 there is an upper bound (occasional flicker at code edges).
        """
        table = self.NOISE_UVPP
        if table is None:
            return tuple((0.0,) * 8 for _ in range(8))
        out = []
        for row in table:
            row = tuple(row) + (row[5],) * (8 - len(row))  # PGA 110b/111b = +-0.256 V
            out.append(tuple(uvpp * 1e-6 / 6.6 for uvpp in row))
        return tuple(out)

    # ------------------------------------------------------------------ power-on / general-call reset
    def reset(self):
        """Power-on reset, also what an I2C general-call reset (06h) does (SBAS444E 7.4.1, 7.5.1.2): registers
        to their reset values, conversion register 0000h, power-down state, comparator cleared."""
        self._ptr = 0
        self._cfg = self.CONFIG_RESET & 0x7FFF  # OS is a status bit: computed on read
        self._lo = self.LO_RESET
        self._hi = self.HI_RESET
        self._conv = 0
        self._active = False  # a conversion (incl. wake-up) is in progress
        self._cv_cfg = self._cfg
        self._cv_start = self._cv_mid = self._cv_end = 0
        self._cv_value = None
        self._pred_t = -1  # time of the scheduled mid-window event of the next continuous conversion
        self._end_t = -1  # time of the scheduled end event (when an ALERT pin is wired)
        self._count = 0  # successive conversions beyond the threshold(s)
        self._asserted = False  # comparator output (traditional/window)
        self._pulse = False  # RDY pulse in continuous mode
        self._pulse_t = -1
        if self._alert_pin is not None:
            self._update_alert()

    # ------------------------------------------------------------------ bus interface (busio stand-in)
    def i2c_write(self, data):
        """A write transaction: pointer byte [+ MSB + LSB] (SBAS444E 7.5.2.1 / 7.5.3).

        Zero bytes: the adafruit_bus_device probe (address ACK only). One byte: sets the pointer. Three or
        more: writes the pointed register (MSB first); MODEL: bytes after the third are ignored, and a lone
        data byte (2-byte write) is ignored (the register is updated only when both bytes arrived)."""
        n = len(data)
        if n == 0:
            return
        self._advance_to(self._clock.now_ns)
        ptr = data[0] & self.POINTER_MASK
        self._ptr = ptr
        if n < 3:
            return
        value = (data[1] << 8) | data[2]
        if ptr == 1:
            self._write_config(value)
        elif ptr == 2 and self.HAS_THRESHOLDS:
            self._lo = value & ~self.THRESH_RO_MASK & 0xFFFF
            self._update_alert()
        elif ptr == 3 and self.HAS_THRESHOLDS:
            self._hi = value | self.THRESH_RO_MASK
            self._update_alert()
        # pointer 0 (conversion register) is read-only; undefined pointers: write ignored

    def i2c_read(self, n):
        """A read transaction: the pointed register, MSB first; more than two bytes repeat MSB, LSB."""
        self._advance_to(self._clock.now_ns)
        ptr = self._ptr
        if ptr == 0:
            v = self._conv
            if self._asserted and self._cfg & _COMP_LAT:
                # latching comparator: "cleared only by reading conversion data" (SBAS444E 7.3.9)
                self._asserted = False
                self._update_alert()
        elif ptr == 1:
            v = self._cfg if self._active else self._cfg | _OS
        elif ptr == 2 and self.HAS_THRESHOLDS:
            v = self._lo
        elif ptr == 3 and self.HAS_THRESHOLDS:
            v = self._hi
        else:
            v = self._undefined_register_value()
        b = bytes((v >> 8, v & 0xFF))
        if n == 2:
            return b
        return (b * (n // 2 + 1))[:n]

    def _undefined_register_value(self):
        return 0xFFFF

    # ------------------------------------------------------------------ config writes and the pipeline
    def _write_config(self, value):
        now = self._clock.now_ns
        self._cfg = value & 0x7FFF
        if not self._active:
            # power-down state: OS=1 starts a single conversion; MODE=0 starts continuous conversions
            if not value & _MODE_SINGLE or value & _OS:
                self._begin(now + WAKEUP_NS)
                self._clock.schedule(self._cv_mid, self._on_mid)
        elif not value & _MODE_SINGLE:
            if self.continuous_restart:
                self._begin(now)
                self._clock.schedule(self._cv_mid, self._on_mid)
            elif self._cv_value is not None:
                # the next conversion (with the new settings) starts when this one ends
                self._predict()
        # else: a conversion is ongoing and single-shot is requested: it completes, then power-down.
        # OS=1 written while converting has no effect (SBAS444E Table 8-3).
        self._update_alert()
        if self._alert_pin is not None and self._active and self._cv_value is not None:
            self._schedule_end()

    def _begin(self, start):
        cfg = self._cfg
        t = self._t_ns[(cfg >> 5) & 7]
        self._cv_cfg = cfg
        self._cv_start = start
        self._cv_mid = start + t // 2
        self._cv_end = start + t
        self._cv_value = None
        self._active = True

    def _predict(self):
        """Schedule the mid-window event of the next continuous conversion (settings as of now)."""
        t = self._t_ns[(self._cfg >> 5) & 7]
        mid = self._cv_end + t // 2
        if mid != self._pred_t:
            self._pred_t = mid
            self._clock.schedule(mid, self._on_mid)

    def _schedule_end(self):
        if self._end_t != self._cv_end:
            self._end_t = self._cv_end
            self._clock.schedule(self._cv_end, self._on_end, plant=False)  # the chip's timing only

    def _advance_to(self, now):
        """Complete every conversion that ended by ``now`` (results, comparator, next continuous conversion)."""
        while self._active and self._cv_end <= now:
            end = self._cv_end
            self._finish(end)
            if self._cfg & _MODE_SINGLE:
                self._active = False  # "When conversion data are ready ... the device powers down again"
                if self._alert_pin is not None:
                    self._update_alert()
            else:
                self._begin(end)

    def _on_mid(self, t):
        self._advance_to(t)
        if self._active and self._cv_value is None and self._cv_mid == t:
            self._cv_value = self._sample(self._cv_cfg)
            if not self._cfg & _MODE_SINGLE:
                self._predict()
            if self._alert_pin is not None:
                self._schedule_end()
        # otherwise a stale event (settings changed after it was scheduled): nothing to do

    def _on_end(self, t):
        self._advance_to(t)

    def _finish(self, end):
        value = self._cv_value
        if value is None:  # not reached with the scheduled mid-window events; kept as a safety net
            value = self._sample(self._cv_cfg)
        self._n_conv += 1
        if not self.stuck:
            self._conv = value
        if not self.HAS_COMPARATOR:
            return
        cfg = self._cfg
        if cfg & _COMP_QUE == _COMP_QUE:
            self._count = 0
            return
        if self._hi & 0x8000 and not self._lo & 0x8000:
            # conversion-ready mode (SBAS444E 7.3.8): continuous mode pulses ~8 us at the end of each conversion
            if self._alert_pin is not None and not self._cv_cfg & _MODE_SINGLE:
                self._pulse = True
                self._pulse_t = end + RDY_PULSE_NS
                self._update_alert()
                self._clock.schedule(self._pulse_t, self._on_pulse_end, plant=False)
            return
        self._compare(_s16(self._conv))

    def _compare(self, x):
        """Digital comparator (SBAS444E 7.3.7). MODEL: "exceeds" = strictly greater than Hi_thresh, "falls
        below" = strictly less than Lo_thresh; the queue counts successive conversions beyond the threshold(s)
        before asserting; deassertion (non-latching) needs one conversion back inside (traditional: below
        Lo_thresh; window: within [Lo_thresh, Hi_thresh]). The comparator state survives config writes."""
        cfg = self._cfg
        hi = _s16(self._hi)
        lo = _s16(self._lo)
        window = cfg & _COMP_WINDOW
        beyond = x > hi or (window and x < lo)
        self._count = self._count + 1 if beyond else 0
        before = self._asserted
        if self._count >= (1, 2, 4)[cfg & _COMP_QUE]:
            self._asserted = True
        elif not cfg & _COMP_LAT:
            if window:
                if lo <= x <= hi:
                    self._asserted = False
            elif x < lo:
                self._asserted = False
        if self._asserted != before and self._alert_pin is not None:
            self._update_alert()

    def _on_pulse_end(self, t):
        if self._pulse and t == self._pulse_t:
            self._pulse = False
            self._update_alert()

    # ------------------------------------------------------------------ analog front end
    def _sample(self, cfg):
        """One conversion result for ``cfg`` from the inputs at this instant: V(AINP) - V(AINN), plus the
        datasheet noise, quantized to the nearest code and clipped at full scale (SBAS444E 7.5.4: "The output
        clips at these codes for signals that exceed full-scale"). MODEL: the absolute input range
        (GND-0.3 V .. VDD+0.3 V) is the plant's business; only the code clips. 12-bit parts are left-justified
        (D[3:0] = 0)."""
        p, n = _MUX[(cfg >> 12) & 7]
        inp = self.inputs
        old = observer_bw(0.5 * self.DATA_RATES[(cfg >> 5) & 7])  # the digital filter averages sensor noise
        try:
            v = inp[p]() if n is None else inp[p]() - inp[n]()
        finally:
            observer_bw(old)
        pga = (cfg >> 9) & 7
        if self.noise:
            s = self._sigma_v[(cfg >> 5) & 7][pga]
            if s:
                v += self._rng.gauss(0.0, s)
        code = math.floor(v * self._scale[pga] + 0.5)
        if code > self._cmax:
            code = self._cmax
        elif code < self._cmin:
            code = self._cmin
        return (code << self._shift) & 0xFFFF

    # ------------------------------------------------------------------ ALERT/RDY pin
    def _alert_source(self):
        return self._alert_level

    def _update_alert(self):
        """Drive the ALERT/RDY pin level from the comparator state (open drain, pulled up).

        COMP_QUE = 11b: comparator disabled, pin high-impedance -> reads high (Table 8-3). Conversion-ready
        mode (Hi_thresh MSB = 1, Lo_thresh MSB = 0; 7.3.8): in single-shot mode the pin "outputs the OS bit"
        (asserted = conversion complete / not converting), in continuous mode an ~8 us pulse per conversion;
        COMP_POL sets the active level, COMP_MODE/COMP_LAT have no function."""
        pin = self._alert_pin
        if pin is None:
            return
        cfg = self._cfg
        if not self.HAS_COMPARATOR or cfg & _COMP_QUE == _COMP_QUE:
            level = True
        else:
            if self._hi & 0x8000 and not self._lo & 0x8000:
                asserted = (not self._active) if cfg & _MODE_SINGLE else self._pulse
            else:
                asserted = self._asserted
            level = asserted if cfg & _COMP_POL_HIGH else not asserted
        if level != self._alert_level:
            self._alert_level = level
            self.board.edge(pin, level)

    # ------------------------------------------------------------------ introspection (tests, tools)
    @property
    def conversions(self):
        """Conversions completed up to now (brings the clock's events and this device up to date)."""
        clock = self._clock
        clock.sync()
        self._advance_to(clock.now_ns)
        return self._n_conv

    @property
    def config(self):
        """The config register as a read would return it (OS reflects the state at the last bus access)."""
        return self._cfg if self._active else self._cfg | _OS

    @property
    def conversion_register(self):
        return self._conv

    def conversion_time_ns(self, dr_code=None):
        """Length of one conversion at a DR code (default: the current one), oscillator error included."""
        if dr_code is None:
            dr_code = (self._cfg >> 5) & 7
        return self._t_ns[dr_code]


class ADS1115Emulator(ADS1x15Emulator):
    """ADS1115: 16-bit, 8..860 SPS, 4-input MUX, PGA, digital comparator with Lo/Hi thresholds and ALERT/RDY.

    Noise: SBAS444E 6.1 Table 6-1 (VDD = 3.3 V, inputs shorted), uVPP column; see ``_noise_sigmas``.
    """

    NAME = "ADS1115"
    BITS = 16
    DATA_RATES = (8, 16, 32, 64, 128, 250, 475, 860)
    # SBAS444E Table 6-1, peak-to-peak values (uV), FSR +-6.144, 4.096, 2.048, 1.024, 0.512, 0.256 V
    NOISE_UVPP = (
        (187.5, 125.0, 62.5, 31.25, 15.62, 7.81),  # 8 SPS
        (187.5, 125.0, 62.5, 31.25, 15.62, 7.81),  # 16
        (187.5, 125.0, 62.5, 31.25, 15.62, 7.81),  # 32
        (187.5, 125.0, 62.5, 31.25, 15.62, 7.81),  # 64
        (187.5, 125.0, 62.5, 31.25, 15.62, 12.35),  # 128
        (252.09, 148.28, 84.03, 39.54, 16.06, 18.53),  # 250
        (266.92, 227.38, 79.08, 56.84, 32.13, 25.95),  # 475
        (430.06, 266.93, 118.63, 64.26, 40.78, 35.83),  # 860
    )


class ADS1015Emulator(ADS1x15Emulator):
    """ADS1015: 12-bit (left-justified in the 16-bit register), 128..3300 SPS, comparator and ALERT/RDY.

    SBAS473E: DR codes 110b and 111b are both 3300 SPS; Lo_thresh/Hi_thresh hold 12-bit values in bits 15:4,
    bits 3:0 are read-only (Lo_thresh reads 0h, Hi_thresh reads Fh; 8.6.4). Noise: the 12-bit parts are
    quantization-limited (the analog noise of this front end is below one 12-bit LSB), so no analog noise is
    added; ``noise`` has no effect.
    """

    NAME = "ADS1015"
    BITS = 12
    DATA_RATES = (128, 250, 490, 920, 1600, 2400, 3300, 3300)
    THRESH_RO_MASK = 0x000F
    NOISE_UVPP = None


class TLA2024Emulator(ADS1x15Emulator):
    """TLA2024: ADS1015-like 12-bit converter without comparator, threshold registers or ALERT/RDY pin.

    SBAS846: the register pointer selects the conversion data register (00h) or the configuration register
    (01h) -- "two registers that are accessible through the I2C interface". Config bits 4:0 are RESERVED, R/W,
    reset 03h (stored and read back as written; they have no function). Conversion data D[3:0] always read 0.

    MODEL (datasheet silent): any other pointer value (02h, 03h, ...) selects no register; writes to it are
    ignored and reads return ``undefined_pointer_value`` (default FFFFh: SDA released, pulled up). The whole
    pointer byte is decoded. Unverified on hardware: do not build chip detection on it.
    """

    NAME = "TLA2024"
    BITS = 12
    DATA_RATES = (128, 250, 490, 920, 1600, 2400, 3300, 3300)
    HAS_COMPARATOR = False
    HAS_THRESHOLDS = False
    POINTER_MASK = 0xFF
    NOISE_UVPP = None
    undefined_pointer_value = 0xFFFF

    def _undefined_register_value(self):
        return self.undefined_pointer_value & 0xFFFF
