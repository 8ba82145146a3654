# Sourced by scripts that debootstrap a Debian tree (criu-chroot.sh, fresh-machine.sh).
# host_mirror prints the host's own Debian mirror, read from its apt configuration, so that no
# mirror host is ever named in this repository.
# The host's own Debian mirror: the first URI of an apt source whose suite is a release name
# (not "-security", not "-updates"), in one-line or deb822 form. No mirror host is named here.
host_mirror() {
  {
    [ -f /etc/apt/sources.list ] && grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list
    ls /etc/apt/sources.list.d/*.list >/dev/null 2>&1 &&
      grep -hE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list.d/*.list
  } 2>/dev/null | sed -E 's/\[[^]]*\]//' | awk '$3 !~ /-(security|updates|backports)$/ {print $2; exit}'
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""; IGNORECASE=1}
         /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
           u=""; s="";
           n=split($0, L, "\n");
           for (i=1;i<=n;i++) { if (L[i] ~ /^URIs:/) { split(L[i], a, " "); u=a[2] }
                               if (L[i] ~ /^Suites:/) { s=L[i] } }
           if (u != "" && s !~ /-security/) { print u; exit }
         }' "$f"
  done
}
