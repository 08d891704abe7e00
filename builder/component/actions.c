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
	{ "Assert", SHAPE_COND, NULL, act_assert, false, false },
	{ "ExecuteBash", SHAPE_MAP, in_bash, act_execute_bash, true, false },
	{ "ExecuteBinary", SHAPE_MAP, in_binary, act_execute_binary, true, false },
	{ "ExecuteDocument", SHAPE_MAP, in_document, act_execute_document, true, false },
	{ "Reboot", SHAPE_NONE, in_reboot, act_reboot, true, false },
	{ "UpdateOS", SHAPE_NONE, in_update, act_update_os, true, false },
	{ "CreateFile", SHAPE_LIST, in_create_file, act_create_file, true, false },
	{ "AppendFile", SHAPE_LIST, in_append, act_append_file, true, false },
	{ "CreateFolder", SHAPE_LIST, in_create_folder, act_create_folder, true, false },
	{ "CreateSymlink", SHAPE_LIST, in_symlink, act_create_symlink, true, false },
	{ "CopyFile", SHAPE_LIST, in_copy, act_copy_file, true, false },
	{ "CopyFolder", SHAPE_LIST, in_copy, act_copy_folder, true, false },
	{ "MoveFile", SHAPE_LIST, in_copy, act_move_file, true, false },
	{ "MoveFolder", SHAPE_LIST, in_copy, act_move_folder, true, false },
	{ "DeleteFile", SHAPE_LIST, in_delete_file, act_delete_file, true, false },
	{ "DeleteFolder", SHAPE_LIST, in_delete_folder, act_delete_folder, true, false },
	{ "ListFiles", SHAPE_LIST, in_list, act_list_files, false, false },
	{ "ReadFile", SHAPE_LIST, in_read, act_read_file, false, false },
	{ "SetFileEncoding", SHAPE_LIST, in_encoding, act_set_file_encoding, true, false },
	{ "SetFileOwner", SHAPE_LIST, in_file_owner, act_set_owner, true, false },
	{ "SetFolderOwner", SHAPE_LIST, in_folder_owner, act_set_owner, true, false },
	{ "SetFilePermissions", SHAPE_LIST, in_file_perms, act_set_permissions, true, false },
	{ "SetFolderPermissions", SHAPE_LIST, in_folder_perms, act_set_permissions, true, false },
	{ "WebDownload", SHAPE_LIST, in_web, act_web_download, true, true },
	{ "S3Download", SHAPE_LIST, in_s3_down, act_s3_download, true, true },
	{ "S3Upload", SHAPE_LIST, in_s3_up, act_s3_upload, false, true },
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
