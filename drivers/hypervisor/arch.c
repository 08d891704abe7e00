/* arch.c: the architecture table (arch.h). */
#include "arch.h"
#include "error.h"

/* builder/guest/agent-blob.S */
extern const char amiforge_agent_x86_64[], amiforge_agent_x86_64_end[];
extern const char amiforge_agent_aarch64[], amiforge_agent_aarch64_end[];

static const struct arch arch_x86_64 = {
	.id = ARCH_X86_64,
	.name = "x86_64",
	.alias = "amd64",
	.ec2 = "x86_64",
	.qemu = "qemu-system-x86_64",
	.machine = "pc",
	.libvirt_machine = NULL,
	.tcg_cpu = NULL,
	.fw_code = NULL,
	.fw_vars = NULL,
	.fw_package = NULL,
	.pci_root = "pci.0",
	.seed_scsi = false,
	.apic = true,
	.console = "ttyS0",
	.efi_loader = "BOOTX64.EFI",
	.uefi_only = false,
	.agent = amiforge_agent_x86_64,
	.agent_end = amiforge_agent_x86_64_end,
	.elf_machine = "x86-64",
};

static const struct arch arch_aarch64 = {
	.id = ARCH_AARCH64,
	.name = "aarch64",
	.alias = "arm64",
	.ec2 = "arm64",
	.qemu = "qemu-system-aarch64",
	.machine = "virt",
	.libvirt_machine = "virt",
	.tcg_cpu = "max",
	.fw_code = "/usr/share/AAVMF/AAVMF_CODE.fd",
	.fw_vars = "/usr/share/AAVMF/AAVMF_VARS.fd",
	.fw_package = "qemu-efi-aarch64",
	.pci_root = "pcie.0",
	.seed_scsi = true,
	.apic = false,
	.console = "ttyAMA0",
	.efi_loader = "BOOTAA64.EFI",
	.uefi_only = true,
	.agent = amiforge_agent_aarch64,
	.agent_end = amiforge_agent_aarch64_end,
	.elf_machine = "ARM aarch64",
};

const struct arch *const arch_table[] = { &arch_x86_64, &arch_aarch64, NULL };

const char *const arch_words[] = { "x86_64", "amd64", "aarch64", "arm64", NULL };

const struct arch *arch_get(enum arch_id id)
{
	for (size_t i = 0; arch_table[i]; i++)
		if (arch_table[i]->id == id)
			return arch_table[i];
	return &arch_x86_64;
}

const struct arch *arch_find(const char *name)
{
	for (size_t i = 0; name && arch_table[i]; i++)
		if (strcmp(arch_table[i]->name, name) == 0 ||
		    strcmp(arch_table[i]->alias, name) == 0)
			return arch_table[i];
	return NULL;
}

const struct arch *arch_find_ec2(const char *ec2)
{
	for (size_t i = 0; ec2 && arch_table[i]; i++)
		if (strcmp(arch_table[i]->ec2, ec2) == 0)
			return arch_table[i];
	return NULL;
}

const struct arch *arch_host(void)
{
#if defined(__aarch64__)
	return &arch_aarch64;
#else
	return &arch_x86_64;
#endif
}

const char *arch_names(void)
{
	return "x86_64 (amd64), aarch64 (arm64)";
}

const void *arch_agent(const struct arch *a, size_t *len)
{
	*len = (size_t)(a->agent_end - a->agent);
	if (!*len) {
		err_set("this amiforge was built without the %s agent (make AGENT_ARCHES=...): "
			"it cannot boot %s guests", a->name, a->name);
		return NULL;
	}
	return a->agent;
}
