/* amiforge convert DISK --format F -o OUT: see convert.h. */
#include <getopt.h>

#include "commands.h"
#include "builder/convert/convert.h"
#include "error.h"
#include "log.h"

#define CONVERT_USAGE "convert DISK --format raw|qcow2|vmdk|vhd|vhdx|ova -o OUT [--verify]\n" \
	"         [--vhd-type fixed|dynamic] [--input-format raw|qcow2|vmdk|vhd|vhdx]"

int cmd_convert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'O' },
		{ "output", required_argument, NULL, 'o' },
		{ "verify", no_argument, NULL, 'V' },
		{ "vhd-type", required_argument, NULL, 'T' },
		{ "input-format", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct convert_opts o;
	bool have_format = false;
	int ch;

	memset(&o, 0, sizeof(o));
	while ((ch = getopt_long(argc, argv, "O:o:f:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'O':
			if (convert_format_parse(optarg, &o.format) < 0) {
				log_err_msg();
				return cmd_usage(CONVERT_USAGE);
			}
			have_format = true;
			break;
		case 'o':
			o.output = optarg;
			break;
		case 'V':
			o.verify = true;
			break;
		case 'T':
			if (strcmp(optarg, "fixed") == 0)
				o.vhd_fixed = true;
			else if (strcmp(optarg, "dynamic") == 0)
				o.vhd_fixed = false;
			else {
				log_error("convert: unknown --vhd-type '%s'", optarg);
				return cmd_usage(CONVERT_USAGE);
			}
			break;
		case 'f':
			o.input_format = optarg;
			break;
		case 'h':
			printf("usage: amiforge %s\n\nConvert a disk; the output appears only when "
			       "complete. VMDK is streamOptimized,\nwritten by amiforge itself (only "
			       "the data is read; grains are deflated on\nevery CPU); OVA holds an OVF "
			       "1.0 descriptor, that VMDK and a SHA256 manifest.\nThe other formats "
			       "come from qemu-img convert.\n", CONVERT_USAGE);
			return EXIT_OK;
		default:
			return cmd_usage(CONVERT_USAGE);
		}
	}
	if (optind + 1 != argc || !have_format || !o.output)
		return cmd_usage(CONVERT_USAGE);
	o.input = argv[optind];
	o.progress = log_get_level() >= LOG_INFO;
	if (convert_run(&o) < 0) {
		log_err_msg();
		return EXIT_FAIL;
	}
	log_info("wrote '%s'", o.output);
	return EXIT_OK;
}
