# kbuild-py profile {{profile}}: its patches and configuration, as one kernel feature.
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI += "file://kbuild-py-{{profile}}.scc"
