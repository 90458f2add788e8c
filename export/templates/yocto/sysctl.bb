SUMMARY = "sysctl settings of the kbuild-py hardening profile {{profile}}"
LICENSE = "MIT"
LIC_FILES_CHKSUM = "file://${COMMON_LICENSE_DIR}/MIT;md5=0835ade698e0bcf8506ecda2f7b4f302"

SRC_URI = "file://90-kbuild-py-{{profile}}.conf"
S = "${WORKDIR}"

do_install() {
    install -d ${D}${sysconfdir}/sysctl.d
    install -m 0644 ${WORKDIR}/90-kbuild-py-{{profile}}.conf ${D}${sysconfdir}/sysctl.d/
}

FILES:${PN} = "${sysconfdir}/sysctl.d/90-kbuild-py-{{profile}}.conf"
