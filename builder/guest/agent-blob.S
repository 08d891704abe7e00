/* The static guest agents, embedded in the host binary: one is written to
 * the NoCloud seed ISO (or injected into the overlay) when a guest boots,
 * the one of the guest's architecture (drivers/hypervisor/arch.c). A path
 * that is the empty file gives an empty blob: that build has no such agent
 * (make AGENT_ARCHES=...). */
	.section .rodata
	.global amiforge_agent_x86_64
	.global amiforge_agent_x86_64_end
	.global amiforge_agent_aarch64
	.global amiforge_agent_aarch64_end
	.balign 16
amiforge_agent_x86_64:
	.incbin AGENT_X86_64_PATH
amiforge_agent_x86_64_end:
	.byte 0
	.balign 16
amiforge_agent_aarch64:
	.incbin AGENT_AARCH64_PATH
amiforge_agent_aarch64_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
