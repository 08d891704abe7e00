/* actions.c: the action table and shared helpers. */
#include <jansson.h>

#include "actions.h"
#include "error.h"
#include "util.h"

#define END { NULL, IN_STR, false }

static const struct input_def in_bash[] = {
	{ "commands", IN_STRLIST, true }, END };
static const struct input_def in_binary[] = {
	{ "path", IN_STR, true }, { "arguments", IN_STRLIST, false }, END };
static const struct input_def in_document[] = {
	{ "document", IN_STR, true }, { "phases", IN_STR, false },
	{ "parameters", IN_PARAMLIST, false }, { "document-s3-bucket-owner", IN_STR, false },
	END };
static const struct input_def in_reboot[] = { { "delaySeconds", IN_INT, false }, END };
static const struct input_def in_update[] = {
	{ "include", IN_STRLIST, false }, { "exclude", IN_STRLIST, false }, END };
static const struct input_def in_create_file[] = {
	{ "path", IN_STR, true }, { "content", IN_STR, false }, { "encoding", IN_STR, false },
	{ "owner", IN_STR, false }, { "group", IN_STR, false },
	{ "permissions", IN_STR, false }, { "overwrite", IN_BOOL, false }, END };
static const struct input_def in_append[] = {
	{ "path", IN_STR, true }, { "content", IN_STR, false }, { "encoding", IN_STR, false },
	END };
static const struct input_def in_create_folder[] = {
	{ "path", IN_STR, true }, { "owner", IN_STR, false }, { "group", IN_STR, false },
	{ "permissions", IN_STR, false }, { "overwrite", IN_BOOL, false }, END };
static const struct input_def in_symlink[] = {
	{ "path", IN_STR, true }, { "target", IN_STR, true }, { "force", IN_BOOL, false }, END };
static const struct input_def in_copy[] = {
	{ "source", IN_STR, true }, { "destination", IN_STR, true },
	{ "overwrite", IN_BOOL, false }, END };
static const struct input_def in_delete_file[] = { { "path", IN_STR, true }, END };
static const struct input_def in_delete_folder[] = {
	{ "path", IN_STR, true }, { "force", IN_BOOL, false }, END };
static const struct input_def in_list[] = {
	{ "path", IN_STR, true }, { "fileNamePattern", IN_STR, false },
	{ "recursive", IN_BOOL, false }, END };
static const struct input_def in_read[] = {
	{ "path", IN_STR, true }, { "encoding", IN_STR, false },
	{ "printFileContent", IN_BOOL, false }, END };
static const struct input_def in_encoding[] = {
	{ "path", IN_STR, true }, { "encoding", IN_STR, true }, END };
static const struct input_def in_file_owner[] = {
	{ "path", IN_STR, true }, { "owner", IN_STR, true }, { "group", IN_STR, false }, END };
static const struct input_def in_folder_owner[] = {
	{ "path", IN_STR, true }, { "owner", IN_STR, true }, { "group", IN_STR, false },
	{ "recursive", IN_BOOL, false }, END };
static const struct input_def in_file_perms[] = {
	{ "path", IN_STR, true }, { "permissions", IN_STR, true }, END };
static const struct input_def in_folder_perms[] = {
	{ "path", IN_STR, true }, { "permissions", IN_STR, true },
	{ "recursive", IN_BOOL, false }, END };
static const struct input_def in_web[] = {
	{ "source", IN_STR, true }, { "destination", IN_STR, true },
	{ "overwrite", IN_BOOL, false }, { "checksum", IN_STR, false },
	{ "algorithm", IN_STR, false }, { "ignoreCertificateErrors", IN_BOOL, false },
	{ "maxRetries", IN_INT, false }, END };
static const struct input_def in_s3_down[] = {
	{ "source", IN_STR, true }, { "destination", IN_STR, true },
	{ "expectedBucketOwner", IN_STR, false }, { "overwrite", IN_BOOL, false }, END };
static const struct input_def in_s3_up[] = {
	{ "source", IN_STR, true }, { "destination", IN_STR, true },
	{ "recurse", IN_BOOL, false }, { "expectedBucketOwner", IN_STR, false }, END };

static const struct action_def actions[] = {
	{ .name = "Assert", .shape = SHAPE_COND, .inputs = NULL, .run = act_assert },
	{ .name = "ExecuteBash", .shape = SHAPE_MAP, .inputs = in_bash, .run = act_execute_bash,
	  .flags = ACT_CHANGES_DISK },
	{ .name = "ExecuteBinary", .shape = SHAPE_MAP, .inputs = in_binary,
	  .run = act_execute_binary, .flags = ACT_CHANGES_DISK },
	{ .name = "ExecuteDocument", .shape = SHAPE_MAP, .inputs = in_document,
	  .run = act_execute_document, .flags = ACT_CHANGES_DISK | ACT_RUNS_DOCUMENT,
	  .outside = OUTSIDE_UNLESS_KNOWN },
	{ .name = "Reboot", .shape = SHAPE_NONE, .inputs = in_reboot, .run = act_reboot,
	  .flags = ACT_CHANGES_DISK | ACT_REBOOTS | ACT_OWN_TIMEOUT },
	{ .name = "UpdateOS", .shape = SHAPE_NONE, .inputs = in_update, .run = act_update_os,
	  .flags = ACT_CHANGES_DISK, .outside = OUTSIDE_ALWAYS },
	{ .name = "CreateFile", .shape = SHAPE_LIST, .inputs = in_create_file,
	  .run = act_create_file, .flags = ACT_CHANGES_DISK },
	{ .name = "AppendFile", .shape = SHAPE_LIST, .inputs = in_append,
	  .run = act_append_file, .flags = ACT_CHANGES_DISK },
	{ .name = "CreateFolder", .shape = SHAPE_LIST, .inputs = in_create_folder,
	  .run = act_create_folder, .flags = ACT_CHANGES_DISK },
	{ .name = "CreateSymlink", .shape = SHAPE_LIST, .inputs = in_symlink,
	  .run = act_create_symlink, .flags = ACT_CHANGES_DISK },
	{ .name = "CopyFile", .shape = SHAPE_LIST, .inputs = in_copy, .run = act_copy_file,
	  .flags = ACT_CHANGES_DISK },
	{ .name = "CopyFolder", .shape = SHAPE_LIST, .inputs = in_copy, .run = act_copy_folder,
	  .flags = ACT_CHANGES_DISK },
	{ .name = "MoveFile", .shape = SHAPE_LIST, .inputs = in_copy, .run = act_move_file,
	  .flags = ACT_CHANGES_DISK },
	{ .name = "MoveFolder", .shape = SHAPE_LIST, .inputs = in_copy, .run = act_move_folder,
	  .flags = ACT_CHANGES_DISK },
	{ .name = "DeleteFile", .shape = SHAPE_LIST, .inputs = in_delete_file,
	  .run = act_delete_file, .flags = ACT_CHANGES_DISK },
	{ .name = "DeleteFolder", .shape = SHAPE_LIST, .inputs = in_delete_folder,
	  .run = act_delete_folder, .flags = ACT_CHANGES_DISK },
	{ .name = "ListFiles", .shape = SHAPE_LIST, .inputs = in_list, .run = act_list_files },
	{ .name = "ReadFile", .shape = SHAPE_LIST, .inputs = in_read, .run = act_read_file },
	{ .name = "SetFileEncoding", .shape = SHAPE_LIST, .inputs = in_encoding,
	  .run = act_set_file_encoding, .flags = ACT_CHANGES_DISK },
	{ .name = "SetFileOwner", .shape = SHAPE_LIST, .inputs = in_file_owner,
	  .run = act_set_owner, .flags = ACT_CHANGES_DISK },
	{ .name = "SetFolderOwner", .shape = SHAPE_LIST, .inputs = in_folder_owner,
	  .run = act_set_owner, .flags = ACT_CHANGES_DISK },
	{ .name = "SetFilePermissions", .shape = SHAPE_LIST, .inputs = in_file_perms,
	  .run = act_set_permissions, .flags = ACT_CHANGES_DISK },
	{ .name = "SetFolderPermissions", .shape = SHAPE_LIST, .inputs = in_folder_perms,
	  .run = act_set_permissions, .flags = ACT_CHANGES_DISK },
	{ .name = "WebDownload", .shape = SHAPE_LIST, .inputs = in_web, .run = act_web_download,
	  .flags = ACT_CHANGES_DISK | ACT_HOST_SIDE, .outside = OUTSIDE_UNLESS_CHECKSUMS },
	{ .name = "S3Download", .shape = SHAPE_LIST, .inputs = in_s3_down,
	  .run = act_s3_download, .flags = ACT_CHANGES_DISK | ACT_HOST_SIDE,
	  .outside = OUTSIDE_ALWAYS },
	{ .name = "S3Upload", .shape = SHAPE_LIST, .inputs = in_s3_up, .run = act_s3_upload,
	  .flags = ACT_HOST_SIDE },
};

static const char *const windows_only[] = {
	"ExecutePowerShell", "InstallMSI", "UninstallMSI", "SetRegistry", "SetFileAttributes",
	"InstallMSIPackage",
};

const struct action_def *action_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(actions); i++)
		if (strcmp(actions[i].name, name) == 0)
			return &actions[i];
	return NULL;
}

const char *action_closest(const char *name)
{
	const char *words[ARRAY_SIZE(actions)];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(actions); i++)
		words[i] = actions[i].name;
	return closest_word(name, words, ARRAY_SIZE(words));
}

bool action_windows_only(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(windows_only); i++)
		if (strcmp(windows_only[i], name) == 0)
			return true;
	return false;
}

const char *in_str(json_t *obj, const char *key, const char *def)
{
	json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

bool in_bool(json_t *obj, const char *key, bool def)
{
	const char *s = in_str(obj, key, NULL);

	if (!s)
		return def;
	return strcasecmp(s, "true") == 0;
}
