/* checkpoint.h: a build's disk checkpoints — after every component step that
 * may change the disk, the guest's disk is frozen (a live external qcow2
 * snapshot, guest_snapshot()) and kept in the cache, keyed by what produced
 * it; a later build with the same prefix of steps boots from the deepest
 * matching checkpoint and skips the steps already done.
 *
 *	agent    = H(version, base image sha256, inject_agent_digest())
 *	key(0)   = H(version, base image sha256, disk size [, network] [, agent])
 *	key(i+1) = H(key(i), material of top-level step i [, build nonce])
 *
 * The material (component_plan()) is the step's own definition, the values
 * of the parameters it may use and the text of documents it includes — not
 * the rest of its document, so editing the last step keeps every checkpoint
 * before it. From the first step whose outcome depends on the outside world
 * (component_plan_step.external) in a component not pinned by the recipe
 * (`pin: true`), keys include the build's own random nonce: only the same
 * build (`--resume`) reuses them.
 *
 * After the last step, generalisation and poweroff, the guest's top layer is
 * kept too, as the "generalised" checkpoint:
 *
 *	key(final) = H(key(n), "generalised", ckpt_opts.final_material)
 *
 * A build whose steps and generalisation all match it need not boot the
 * build guest at all: it flattens that layer (only its tests run again).
 *
 * The agent layer: an overlay on the base holding the agent and a systemd
 * unit that starts it as soon as the local file systems are mounted
 * (inject.h), made once per base image and agent with libguestfs, is the
 * bottom of every chain: the agent answers seconds after the kernel, not
 * after cloud-init's stages (the seed is still given, for cloud-init; it
 * brings no agent then). Where it cannot be made (no systemd, no
 * libguestfs...) a warning says why and the seed brings the agent.
 *
 * In the cache (cache_dir()):
 *	checkpoints/layers/agent-<agent>.qcow2 the agent layer, on the base
 *	checkpoints/layers/<nonce>-<n>.qcow2   qcow2 layers; each backs onto the
 *	                                       previous (absolute path, explicit
 *	                                       format), the first onto the agent
 *	                                       layer (or the base)
 *	checkpoints/layers/<nonce>-<n>.state   a saved guest state (see above)
 *	checkpoints/<key>.json                 {layer, parent, base, step,
 *	                                       outputs, state, cost_ms...}: written last,
 *	                                       atomically: a checkpoint exists
 *	                                       when its JSON does
 *	checkpoints/lock                       shared by builds, exclusive for
 *	                                       prune's layer collection
 * In the build directory: checkpoints/state.json (nonce, recipe, vars: what
 * --resume needs) and checkpoints/<key>.qcow2 links to the layers used.
 *
 * Saved guest states: the newest checkpoint before the build's last step
 * also keeps the guest's memory and device state, saved in the same pause
 * as its disk snapshot (guest_snapshot, hv_save_state), as
 * layers/<nonce>-<n>.state beside its layer; its record names the file,
 * the guest's shape (hv_state_shape) and name. A rebuild that starts there
 * restores the guest from it (guest_opts.restore_state) instead of booting:
 * the same guest, processes and /run included, its clock set again. Each
 * build keeps its newest state only. A missing state, another shape or a
 * failed restore boots, as below. The record's cost_ms (what the
 * checkpoint took) seeds a rebuild's policy.
 *
 * The guest booted from a checkpoint starts fresh (as after a reboot);
 * processes started by earlier steps are not running any more. It does not
 * run cloud-init's stages again where the layer could be frozen with
 * cloud-init held off (the agent layer and the default network; see
 * hold_cloud_init in checkpoint.c): its guest ran them at its first boot,
 * and under emulation they are most of a boot. Elsewhere cloud-init runs
 * with a new instance-id. */
#ifndef AMIFORGE_CHECKPOINT_H
#define AMIFORGE_CHECKPOINT_H

#include "compat.h"

struct base_image;
struct build_dir;
struct component_resume;
struct component_run_opts;
struct component_step_info;
struct guest;
struct journal;
struct recipe;

/* Largest checkpoint record read back (the step outputs dominate; the engine
 * bounds one step's captured output at 16 MiB). */
#define CKPT_RECORD_MAX (64u * 1024 * 1024)

struct ckpt_opts {
	const struct recipe *recipe;     /* pin flags of the components */
	const struct base_image *base;
	uint64_t disk_size;              /* the recipe's vm.disk_size (0: the base's) */
	const struct build_dir *bd;
	struct journal *journal;         /* layers are journaled before they exist */
	bool reuse;                      /* false (--no-cache): build every step,
					  * still record checkpoints */
	const char *final_material;      /* what generalisation does (its script
					  * and sections); NULL: no generalised
					  * checkpoint */
	const char *network;             /* the guest's network when it is not the
					  * default (build.c): part of every key */
	bool every_step;                 /* a checkpoint after every step that may
					  * change the disk (default: the policy
					  * of ckpt_step_done) */
	const void *agent;               /* the agent binary: boot from the agent
					  * layer (made once, see above); NULL:
					  * the seed brings the agent */
	size_t agent_len;
	const struct arch *arch;         /* the agent's (and the base's) architecture:
					  * part of the agent layer's key */
	/* Progress: kind "checkpoint" or "step", a name, a status, a detail. */
	void (*event)(const char *kind, const char *name, const char *status,
		      const char *detail, void *opaque);
	void *opaque;
};

struct ckpt;

/* Plan the run co (documents, phases) against the cache: compute the keys,
 * find the deepest usable checkpoint (when o->reuse), take the shared lock.
 * The build directory's state.json gives the nonce when it exists (a resumed
 * build), otherwise a new one is written. NULL with an error recorded. */
struct ckpt *ckpt_new(const struct ckpt_opts *o, const struct component_run_opts *co);

/* The image the guest boots: the reused checkpoint's layer or the agent
 * layer (a qcow2 with a backing chain: guest_opts.image_chain), or NULL for
 * the base image. */
const char *ckpt_image(const struct ckpt *c);
/* The guest state saved with the reused checkpoint (a restore instead of a
 * boot: guest_opts.restore_state), with the shape of guest it needs and
 * the name of the guest that saved it; NULL when there is none. */
const char *ckpt_state(const struct ckpt *c, const char **shape, const char **name);
/* Does the guest's disk start the agent itself (the agent layer is in its
 * chain)? Then generalisation must remove it. */
bool ckpt_agent_in_layer(const struct ckpt *c);
/* Where the guest's first overlay goes (in the cache; journaled). */
const char *ckpt_overlay(const struct ckpt *c);
/* Once the guest booted from ckpt_image() answers: take away what held
 * cloud-init off at its boot (only the file amiforge wrote), so that the
 * build's own reboots run cloud-init as before. 0, or -1 with an error (the
 * file could not be removed). */
int ckpt_booted(struct ckpt *c, struct guest *g);
/* For component_run_opts.resume: NULL when nothing is reused. */
const struct component_resume *ckpt_resume(const struct ckpt *c);

/* The on_step_done hook: after a top-level step that changed the disk and
 * succeeded, freeze the disk into a checkpoint — when it pays for itself:
 * the time since the last checkpoint (what a rebuild would redo without
 * this one) is at least what the last checkpoint took, or the step ends
 * its component, or the next step reboots or depends on the outside world
 * (where a rebuild most likely restarts), or no checkpoint was measured
 * yet; every time with ckpt_opts.every_step. A rebuild then reuses the
 * deepest checkpoint at or before its first changed step. None from a failed step on,
 * nor from one continued past its failure (--on-error=ask): a chain never
 * covers a step that did not pass. A retried step that passed counts as
 * passed. A failure to checkpoint is
 * reported (warning) and turns checkpoints off for the rest of the run; the
 * build goes on. g may be NULL (nothing happens). */
void ckpt_step_done(struct ckpt *c, struct guest *g, const struct component_step_info *info,
		    bool changed_disk);

/* The policy itself: is a checkpoint after top-level step idx of plan worth
 * taking, work_ms after the last one, which took cost_ms (-1: none yet)?
 * Where a rebuild most likely restarts (a component's or a phase's end,
 * before an external step or a reboot, before the build's last step: the
 * one being written in an edit-build loop), always; else when the work
 * since the last one is CKPT_WORK_PER_COST times what the last one cost:
 * checkpoints then add at most a quarter to a run of short steps, and a
 * rebuild redoes at most that much more work than with one after every
 * step. After the last step only by that measure (or as the first): the
 * generalised checkpoint follows, and the one before the last step holds
 * the guest's state, where a rebuild that adds or changes steps goes on. */
#define CKPT_WORK_PER_COST 4
struct component_plan;
bool ckpt_worth_it(const struct component_plan *plan, size_t idx, int64_t work_ms,
		   int64_t cost_ms);

/* Saved guest states in the cache at most (each hundreds of MiB: the
 * guest's memory in use): saving one removes the least recently used
 * beyond this many (a restore counts as a use). */
#define CKPT_STATES_KEEP 4

/* Chain depth: a checkpoint's layer lies at most this many checkpoint
 * layers above the agent layer (or the base), the generalised one's too
 * when the last step checkpointed: before a freeze that would go deeper,
 * the guest's top layer absorbs the upper layers of its chain (a live
 * stream, hv_stream_disk) and so backs onto a lower one. Booting from and
 * flattening a checkpoint then read through a short chain however many
 * steps it holds. */
#define CKPT_DEPTH_MAX 3

/* The merge policy: the chain under the guest's top has n layers (sizes:
 * their bytes, bottom first) and the layer about to be frozen must lie at
 * most max_depth deep. Returns how many of the n to keep (n: no merge); the
 * rest are merged into the top. At least the layers above max_depth - 1 go,
 * and a kept layer smaller than everything merged above it goes too, so
 * that layers grow downwards and a stream copies each byte a few times,
 * not once per checkpoint (as a log-structured merge does). */
size_t ckpt_merge_keep(const uint64_t *sizes, size_t n, size_t max_depth);

/* The generalised checkpoint's layer when it is usable (the whole build
 * guest can be skipped: flatten this), else NULL. */
const char *ckpt_final(const struct ckpt *c);

/* After every step succeeded, generalisation ran and g powered off: keep
 * g's top layer as the generalised checkpoint. g gives up the layer (it is
 * the cache's now, not removed by guest_free); call it after using the
 * overlay (flatten). Nothing happens when a step was not checkpointable.
 * A failure is a warning; the build goes on. */
void ckpt_save_final(struct ckpt *c, struct guest *g);

/* Number of steps skipped / checkpoints saved, for the manifest and tests. */
size_t ckpt_reused(const struct ckpt *c);
size_t ckpt_saved(const struct ckpt *c);
/* Top-level steps of the plan not yet done (ckpt_step_done): during a
 * step's on_step_start, 1 means it is the last. */
size_t ckpt_steps_left(const struct ckpt *c);

/* Release the lock, free; accepts NULL. */
void ckpt_free(struct ckpt *c);

/* --resume: the recipe path and "k=v" vars a build directory was started
 * with (from its checkpoints/state.json). Caller frees *recipe and strv. */
struct strv;
int ckpt_state_load(const char *build_dir, char **recipe, struct strv *vars);
/* Record them (with a new nonce unless one is there). 0 or -1. */
int ckpt_state_save(const char *build_dir, const char *recipe, const char *const *vars);

/* `amiforge cache prune`: drop checkpoints unused for older_than_days (0:
 * all) and those whose chain is broken, with their descendants, then
 * layers no checkpoint needs (unless a build holds the lock). Reports on f,
 * counts into *files and *bytes. 0 or -1. */
int ckpt_prune(const char *cache, unsigned older_than_days, bool dry_run, FILE *f,
	       size_t *files, uint64_t *bytes);

#endif
