use super::ExitKind;

#[test]
fn reasons_classify_like_otp() {
    assert_eq!(ExitKind::from_reason(None), ExitKind::Normal);
    assert_eq!(ExitKind::from_reason(Some("normal")), ExitKind::Normal);
    assert_eq!(ExitKind::from_reason(Some("shutdown")), ExitKind::Shutdown);
    assert_eq!(
        ExitKind::from_reason(Some("shutdown: reload")),
        ExitKind::Shutdown
    );
    assert_eq!(ExitKind::from_reason(Some("killed")), ExitKind::Killed);
    assert_eq!(
        ExitKind::from_reason(Some("meltdown: sup x")),
        ExitKind::Meltdown("meltdown: sup x".into())
    );
    assert_eq!(
        ExitKind::from_reason(Some("bad")),
        ExitKind::Error("bad".into())
    );
}

#[test]
fn only_normal_and_shutdown_are_not_abnormal() {
    assert!(!ExitKind::Normal.is_abnormal());
    assert!(!ExitKind::Shutdown.is_abnormal());
    for exit in [
        ExitKind::Error("e".into()),
        ExitKind::Panic("p".into()),
        ExitKind::Killed,
        ExitKind::Meltdown("meltdown".into()),
    ] {
        assert!(exit.is_abnormal(), "{exit:?}");
    }
}
