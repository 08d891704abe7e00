/* The static guest agent, embedded in the host binary: it is written to the
 * NoCloud seed ISO (or injected into the overlay) when a guest boots. */
	.section .rodata
	.global amiforge_agent_blob
	.global amiforge_agent_blob_end
	.balign 16
amiforge_agent_blob:
	.incbin AGENT_PATH
amiforge_agent_blob_end:
	.byte 0
	.section .note.GNU-stack,"",@progbits
