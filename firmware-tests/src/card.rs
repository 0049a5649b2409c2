//! The whole virtual card: the PIV applet and the FIDO2 applet behind one
//! ATR, chosen by SELECT as on a real YubiKey 5. Commands other than a
//! SELECT go to the applet selected last; after power-up that is PIV (the
//! `yubikey` crate and ykcs11 select it anyway).

use crate::apdu::Command;
use crate::applet::{Applet, MGMT_AID, PIV_AID};
use crate::attest::AttestationRoot;
use crate::fido::{self, FidoApplet, FidoControl, FIDO_AID};
use crate::harness::{build_applet, VirtualKeyOptions};
use crate::touch::TouchControl;
use crate::Result;

/// Which applet answers non-SELECT commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selected {
    /// The PIV applet (and the management applet it stands in for).
    Piv,
    /// The FIDO2 applet.
    Fido,
}

/// A virtual YubiKey with both applets.
#[derive(Debug)]
pub struct VirtualCard {
    piv: Applet,
    fido: FidoApplet,
    selected: Selected,
}

impl VirtualCard {
    /// A card with these two applets; PIV is selected.
    pub fn new(piv: Applet, fido: FidoApplet) -> Self {
        Self {
            piv,
            fido,
            selected: Selected::Piv,
        }
    }

    /// The PIV applet.
    pub fn piv(&self) -> &Applet {
        &self.piv
    }

    /// The FIDO applet.
    pub fn fido(&mut self) -> &mut FidoApplet {
        &mut self.fido
    }

    /// The applet selected now.
    pub fn selected(&self) -> Selected {
        self.selected
    }

    /// Power off, power on or reset: both applets forget their sessions
    /// and PIV is selected again.
    pub fn reset(&mut self) {
        self.piv.reset();
        self.fido.reset();
        self.selected = Selected::Piv;
    }

    /// Processes one command APDU. Never panics, whatever the input.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if let Ok(cmd) = Command::parse(apdu) {
            if cmd.cla == 0x00 && cmd.ins == 0xA4 && cmd.p1 == 0x04 {
                if cmd.data.starts_with(&FIDO_AID) {
                    self.selected = Selected::Fido;
                    return self.fido.process(apdu);
                }
                if cmd.data.starts_with(&PIV_AID) || cmd.data.starts_with(&MGMT_AID) {
                    self.selected = Selected::Piv;
                    return self.piv.process(apdu);
                }
                // An AID neither applet owns: PIV answers `6A82`, and the
                // selection stays as it was.
                return self.piv.process(apdu);
            }
        }
        match self.selected {
            Selected::Piv => self.piv.process(apdu),
            Selected::Fido => self.fido.process(apdu),
        }
    }
}

/// Builds the card for `opts`: the PIV applet from its state file (or
/// fresh), the FIDO applet from the file beside it (`<state>.fido.json`).
/// Both share one touch sensor, as a real key has one. Returns the card and
/// the FIDO applet's control handle.
pub fn build_card(
    opts: &VirtualKeyOptions,
    root: &AttestationRoot,
    touch: TouchControl,
) -> Result<(VirtualCard, FidoControl)> {
    let piv = build_applet(opts, root, touch.clone())?;
    let serial = piv.state().info.serial;
    let fido_path = opts.state_file.as_deref().map(fido::state::path_beside);
    let (fido, control) = fido::build(root, serial, fido_path.as_deref(), touch)?;
    Ok((VirtualCard::new(piv, fido), control))
}
