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
                    // Leaving PIV drops its PIN verification and
                    // management-key authentication, as on a real key.
                    if self.selected == Selected::Piv {
                        self.piv.reset();
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> VirtualCard {
        let root = AttestationRoot::create().unwrap();
        let opts = VirtualKeyOptions {
            serial: 77,
            ..VirtualKeyOptions::default()
        };
        build_card(&opts, &root, TouchControl::new()).unwrap().0
    }

    fn select(aid: &[u8]) -> Vec<u8> {
        let mut apdu = vec![0x00, 0xA4, 0x04, 0x00, aid.len() as u8];
        apdu.extend_from_slice(aid);
        apdu
    }

    const GET_SERIAL: [u8; 5] = [0x00, 0xF8, 0x00, 0x00, 0x00];
    const GET_INFO: [u8; 6] = [0x80, 0x10, 0x00, 0x00, 0x01, 0x04];

    #[test]
    fn select_chooses_the_applet() {
        let mut card = card();
        // PIV after power-up.
        assert_eq!(card.process(&GET_SERIAL), [0, 0, 0, 77, 0x90, 0x00]);
        assert_eq!(card.process(&select(&FIDO_AID)), b"FIDO_2_0\x90\x00");
        assert_eq!(card.selected(), Selected::Fido);
        // PIV's instructions mean nothing to the FIDO applet...
        assert_eq!(card.process(&GET_SERIAL), [0x6D, 0x00]);
        let info = card.process(&GET_INFO);
        assert_eq!(
            (info[0], &info[info.len() - 2..]),
            (0x00, &[0x90, 0x00][..])
        );
        // ...an unknown AID changes nothing...
        assert_eq!(
            card.process(&select(&[0xA0, 0x00, 0x00, 0x09])),
            [0x6A, 0x82]
        );
        assert_eq!(card.selected(), Selected::Fido);
        // ...and PIV comes back when selected, or after a power cycle.
        assert_eq!(card.process(&select(&PIV_AID))[..2], [0x61, 0x11]);
        assert_eq!(card.process(&GET_SERIAL), [0, 0, 0, 77, 0x90, 0x00]);
        assert_eq!(card.process(&GET_INFO), [0x6E, 0x00]);
        card.process(&select(&FIDO_AID));
        card.reset();
        assert_eq!(card.selected(), Selected::Piv);
    }

    #[test]
    fn leaving_piv_drops_its_management_key_authentication() {
        use crate::tlv::{self, Tlv};
        let mut card = card();
        // Mutual authentication with the factory 3DES key (firmware 5.4).
        let key = crate::keys::MgmKey::factory(false);
        let r = card.process(&[0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00]);
        let outer = Tlv::decode_single(&r[..r.len() - 2]).unwrap();
        let inner = Tlv::decode_all(outer.value).unwrap();
        let witness = key.decrypt_block(tlv::find(&inner, 0x80).unwrap()).unwrap();
        let mut body = tlv::encode(0x80, &witness);
        body.extend(tlv::encode(0x81, &[0u8; 8]));
        let data = tlv::encode(0x7C, &body);
        let mut auth = vec![0x00, 0x87, 0x03, 0x9B, data.len() as u8];
        auth.extend_from_slice(&data);
        let answer = card.process(&auth);
        assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
        // GENERATE needs the management key: allowed now...
        let generate = [0x00, 0x47, 0x00, 0x9A, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11];
        let out = card.process(&generate);
        assert_eq!(out[out.len() - 2..], [0x90, 0x00]);
        // ...and no longer after a visit to the FIDO applet.
        card.process(&select(&FIDO_AID));
        card.process(&select(&PIV_AID));
        assert_eq!(card.process(&generate), [0x69, 0x82]);
    }
}
