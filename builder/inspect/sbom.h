/* sbom.h: what an image contains — its installed packages read offline from
 * the disk's own package database (never from a running guest's say-so),
 * as a CycloneDX 1.5 JSON SBOM; and the difference between two of them.
 *
 *	json_t *bom = NULL;
 *	sbom_of_disk("out.qcow2", "qcow2", &bom);      // one appliance, read-only
 *	json_t *d = sbom_diff(old_bom, bom);           // added, removed, changed
 *
 * Databases read: dpkg (/var/lib/dpkg/status). RPM databases are not read
 * yet: an RPM-based image gets an SBOM with the OS and kernels and no
 * packages, and a "amiforge:packages:incomplete" property says why.
 * Everything read from the disk is bounded (SBOM_DB_MAX, SBOM_PACKAGES_MAX)
 * and kept as data: names and versions go into JSON strings only. */
#ifndef AMIFORGE_SBOM_H
#define AMIFORGE_SBOM_H

#include <jansson.h>

#include "compat.h"
#include "builder/disk/appliance.h"

/* Largest package database read, most packages listed. */
#define SBOM_DB_MAX (64u << 20)
#define SBOM_PACKAGES_MAX 100000

/* Parse a dpkg status file: installed packages as a JSON array of
 * {name, version, arch, source}, sorted by name. NULL (error recorded) when
 * it is not a dpkg status file. */
json_t *sbom_parse_dpkg_status(const char *text, size_t len);

/* The CycloneDX 1.5 document for packages (as above) of an OS. */
json_t *sbom_cyclonedx(const json_t *packages, const char *distro, const char *os_version,
		       const char *arch, const json_t *kernels, const char *image_name,
		       bool incomplete);

/* The SBOM of an OS already mounted in appliance g (the inspector's: one
 * appliance does both). 0 or -1. */
int sbom_of_mounted(guestfs_h *g, const struct appliance_os *os, const char *disk,
		    const char *image_name, json_t **bom);
/* Read the disk (format stated) in one appliance: its SBOM when bom is not
 * NULL, the files under paths (files.h) when files is not NULL. 0 or -1. */
int sbom_of_disk(const char *disk, const char *format, const char *image_name, json_t **bom,
		 const char *const *paths, size_t npaths, json_t **files);

/* Packages of a CycloneDX document made by sbom_cyclonedx(): name → version. */
json_t *sbom_packages_of(const json_t *bom);

/* { added: [{name, version}], removed: [...], changed: [{name, from, to}] }
 * from a to b. */
json_t *sbom_diff(const json_t *a, const json_t *b);

#endif
