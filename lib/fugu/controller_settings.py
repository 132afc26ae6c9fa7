"""Applying the settings to the controller's parts (lib/fugu/controller.py): at boot and after a change. A module of
its own because a running controller needs it only when a setting changes: Controller.apply_settings() imports it
and drops it again.
"""


def apply(ctl):
    """The charger's profile and current limit, the thermal thresholds, each stage's input limit and scan period
    (and a boost stage's targets), the power budget: all from ctl.settings."""
    s = ctl.settings
    ctl._gen = s.generation
    custom = {"v_absorb_cell_mv": s.get("custom_v_absorb_cell_mv"),
              "v_float_cell_mv": s.get("custom_v_float_cell_mv"),
              "v_rebulk_cell_mv": s.get("custom_v_rebulk_cell_mv"),
              "tail_ma_per_ah": s.get("custom_tail_ma_per_ah")}
    i_max = min(s.get("i_charge_max_ma"), ctl.hw.ratings["i_out_max_ma"])
    ctl.charger.configure(chem=s.get("battery_chem"), cells=s.get("battery_cells"),
                          capacity_ah=s.get("battery_capacity_ah"), i_max_ma=i_max, custom=custom,
                          equalize=s.get("equalize_enable"),
                          temp_comp_uv_per_c_cell=s.get("temp_comp_uv_per_c_cell"))
    ctl.thermal.configure(s.get("t_derate_start_c"), s.get("t_shutdown_c"), s.get("fan_on_c"),
                          s.get("silent_mode"))
    v_in_max = min(s.get("v_in_max_mv"), ctl.hw.ratings["v_in_max_mv"])
    for st in ctl.stages:
        st.v_in_max_mv = v_in_max
        st.prot.v_in_max_mv = v_in_max
        st.scan_interval_ms = s.get("scan_interval_s") * 1000
        if ctl.boost:
            st.configure(s.get("boost_v_target_mv"), s.get("boost_i_max_ma"))
    ctl._p_max_mw = s.get("p_max_w") * 1000
