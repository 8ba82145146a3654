//! The self-restoring return of a remote call: the register block of the interrupted state
//! flows onto the borrowed thread's stack ([`return_block`]) and constant machine code
//! ([`return_code`]), written once into the zero padding at the end of libc's text
//! ([`return_code_in`]), carries the called function's result and a done mark back into that
//! block, then puts every register back and returns to where the thread was — with or without
//! the injector still there.

use super::mem::read_mem;
use super::Regs;

/// Where a call's self-restoring return lives (see [`return_code`]).
#[derive(Clone, Copy, Debug)]
pub(super) struct ReturnFrame {
    /// Address of the return code in the target.
    pub(super) code: u64,
    /// Address of the register block (the stack pointer when the code starts).
    pub(super) block: u64,
    /// Value the code writes to the done slot.
    pub(super) cookie: u64,
}

/// A value for the done mark that stale stack contents will not show by chance.
pub(super) fn cookie() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (t ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1
}

/// Register block offsets (bytes from the stack pointer at which the return code starts).
const OFF_EFLAGS: usize = 0x80;
const OFF_RIP_SLOT: usize = 0x88;
pub(super) const OFF_RESULT: usize = 0x90;
const OFF_COOKIE: usize = 0xa0;
pub(super) const BLOCK_LEN: usize = 0xa8;
/// Iterations of the return code's `pause` loop: the time (some ms) the injector has to see
/// the done mark before the thread goes on by itself and may reuse that stack.
const HANDSHAKE_SPINS: u32 = 1 << 22;
/// `ret` pops the saved `rip` from a slot this many bytes + 8 below the saved stack pointer;
/// everything a call borrows lies below that slot, far below the red zone (128 bytes).
pub(super) const RIP_SLOT_DEPTH: u64 = 2048;
/// Marker in front of the return code in the target.
const RETURN_MAGIC: &[u8; 16] = b"guievict-return3";
/// Bytes reserved at the end of libc's code mapping for the marker and the return code.
const RETURN_AREA: u64 = 512;
/// Upper bound on the return code's length.
pub(super) const RETURN_CODE_MAX: usize = RETURN_AREA as usize - 16;

/// The register block for returning to `r` (restartable registers) through a `ret` from
/// `rip_slot`, with `cookie` to be written as the done mark.
pub(super) fn return_block(r: &Regs, rip_slot: u64, cookie: u64) -> Vec<u8> {
    let vals = [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12, r.r13,
        r.r14, r.r15, 0, r.eflags, rip_slot, 0, 0, cookie,
    ];
    vals.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// Machine code a called function returns into (x86_64; the same bytes for every call, all
/// operands relative to the stack pointer, which points at the register block laid out by
/// [`return_block`]). It stores `rax` as the result and the call's cookie as the done mark,
/// spins a few milliseconds (the injector, if still there, sees the mark meanwhile and
/// completes the return by hand, before the thread could reuse that stack),
/// restores `rflags` and every general register, loads the stack pointer with the address of
/// the slot holding the saved `rip` and returns through it with `ret 2048`, which leaves the
/// stack pointer exactly where it was. So the thread goes back to what it was doing — an
/// interrupted system call rewound to restart — whether or not the injector is still there.
/// No register is needed for the last steps, and a signal arriving meanwhile builds its frame
/// below the stack pointer, never over the slots still to be read.
pub fn return_code() -> Vec<u8> {
    let mut c: Vec<u8> = Vec::new();
    let rsp_op = |c: &mut Vec<u8>, prefix: &[u8], off: usize| {
        c.extend(prefix);
        c.push(0x24); // SIB: base rsp
        c.extend((off as u32).to_le_bytes());
    };
    // mov [rsp+result], rax; mov rax, [rsp+cookie]; mov [rsp+done], rax
    rsp_op(&mut c, &[0x48, 0x89, 0x84], OFF_RESULT);
    rsp_op(&mut c, &[0x48, 0x8b, 0x84], OFF_COOKIE);
    rsp_op(&mut c, &[0x48, 0x89, 0x84], OFF_RESULT + 8);
    // Spin a while (pause; dec ecx; jnz) so that the injector, if still there, sees the mark
    // and completes the return by hand. No system call here: one interrupted by the injector
    // would replace the thread's restart block, which the interrupted call (poll, nanosleep…)
    // needs to resume through restart_syscall.
    c.push(0xb9); // mov ecx, imm32
    c.extend(HANDSHAKE_SPINS.to_le_bytes());
    c.extend([0xf3, 0x90, 0xff, 0xc9, 0x75, 0xfa]); // pause; dec ecx; jnz -6
                                                    // push qword [rsp+eflags]; popfq
    rsp_op(&mut c, &[0xff, 0xb4], OFF_EFLAGS);
    c.push(0x9d);
    // mov reg, [rsp+8*i] for every general register but rsp: (REX, ModRM) in block order.
    const LOADS: [(u8, u8); 15] = [
        (0x48, 0x84), // rax
        (0x48, 0x9c), // rbx
        (0x48, 0x8c), // rcx
        (0x48, 0x94), // rdx
        (0x48, 0xb4), // rsi
        (0x48, 0xbc), // rdi
        (0x48, 0xac), // rbp
        (0x4c, 0x84), // r8
        (0x4c, 0x8c), // r9
        (0x4c, 0x94), // r10
        (0x4c, 0x9c), // r11
        (0x4c, 0xa4), // r12
        (0x4c, 0xac), // r13
        (0x4c, 0xb4), // r14
        (0x4c, 0xbc), // r15
    ];
    for (i, (rex, modrm)) in LOADS.iter().enumerate() {
        rsp_op(&mut c, &[*rex, 0x8b, *modrm], 8 * i);
    }
    // mov rsp, [rsp+rip_slot]; ret 2048
    rsp_op(&mut c, &[0x48, 0x8b, 0xa4], OFF_RIP_SLOT);
    c.push(0xc2);
    c.extend((RIP_SLOT_DEPTH as u16).to_le_bytes());
    c
}

/// The address of the return code in `pid`, writing it (behind [`RETURN_MAGIC`]) into the
/// zero padding at the end of libc's code mapping if it is not there yet. The write goes
/// through `/proc/<pid>/mem` (a private copy of that page for the target); nothing executes
/// those bytes otherwise. None when libc's mapping has no such padding.
pub(super) fn return_code_in(pid: i32) -> Option<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let end = maps.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let range = f.next()?;
        let perms = f.next()?;
        let path = f.nth(3)?;
        let name = path.rsplit('/').next()?;
        (perms.contains('x') && name.starts_with("libc.so"))
            .then(|| u64::from_str_radix(range.split_once('-')?.1, 16).ok())?
    })?;
    let area = end - RETURN_AREA;
    let have = read_mem(pid, area, RETURN_AREA as usize).ok()?;
    let code = return_code();
    let mut want = RETURN_MAGIC.to_vec();
    want.extend(&code);
    if have.starts_with(&want) {
        return Some(area + 16);
    }
    if have.len() != RETURN_AREA as usize || have.iter().any(|&b| b != 0) {
        return None;
    }
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .ok()?;
    f.write_all_at(&want, area).ok()?;
    Some(area + 16)
}

#[cfg(test)]
mod tests {
    use super::super::tests::zero;
    use super::*;

    #[test]
    fn return_code_shape() {
        let c = return_code();
        assert!(
            c.len() + RETURN_MAGIC.len() <= RETURN_AREA as usize,
            "{} bytes",
            c.len()
        );
        // Ends with `ret 2048`; makes no system call (it must not touch the restart block).
        assert_eq!(&c[c.len() - 3..], &[0xc2, 0x00, 0x08]);
        assert_eq!(c.windows(2).filter(|w| w == &[0x0f, 0x05]).count(), 0);
        // Every block slot it reads lies inside the block.
        let block = return_block(&zero(), 0x1000, 7);
        assert_eq!(block.len(), BLOCK_LEN);
        assert_eq!(&block[OFF_COOKIE..OFF_COOKIE + 8], &7u64.to_ne_bytes());
        assert_eq!(
            &block[OFF_RIP_SLOT..OFF_RIP_SLOT + 8],
            &0x1000u64.to_ne_bytes()
        );
    }
}
