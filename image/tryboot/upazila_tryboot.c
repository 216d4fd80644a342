// SPDX-License-Identifier: GPL-2.0
/*
 * The Raspberry Pi firmware's one-shot "tryboot" flag for Debian's mainline kernel.
 *
 * The firmware boots autoboot.txt's [tryboot] partition once when the flag is set before a
 * reboot (Raspberry Pi's documented A/B: "reboot '0 tryboot'"). Raspberry Pi's own kernel
 * sets it from its firmware driver; mainline's driver has no such hook, so on Debian's
 * linux-image-arm64 the trial reboot of an update boots the committed slot again. This
 * module adds the hook: on a restart whose argument names "tryboot", it sends the firmware
 * property SET_REBOOT_FLAGS (0x00038064) with bit 0 set, through the mainline driver's
 * exported rpi_firmware_property(). Reboot notifiers run before devices shut down, so the
 * mailbox still answers. Any other restart, power cut or watchdog reset leaves the flag
 * clear: the firmware boots [all], the committed slot.
 *
 * udev loads it where the device tree has the Pi's firmware node (its OF alias); anywhere
 * else it refuses to load (-ENODEV).
 */
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/of.h>
#include <linux/reboot.h>
#include <linux/string.h>
#include <soc/bcm2835/raspberrypi-firmware.h>

#define UPAZILA_SET_REBOOT_FLAGS 0x00038064	/* the firmware's property tag */
#define UPAZILA_REBOOT_FLAG_TRYBOOT 0x1

static struct device_node *fw_node;

static int tryboot_notify(struct notifier_block *nb, unsigned long action, void *data)
{
	const char *arg = data;
	u32 flags = UPAZILA_REBOOT_FLAG_TRYBOOT;
	struct rpi_firmware *fw;
	int ret;

	if (action != SYS_RESTART || !arg || !strstr(arg, "tryboot"))
		return NOTIFY_DONE;
	/* taken now, not at load: udev may load this before the firmware driver has probed */
	fw = rpi_firmware_get(fw_node);
	if (!fw) {
		pr_err("upazila_tryboot: no firmware driver; this restart boots the committed slot\n");
		return NOTIFY_DONE;
	}
	ret = rpi_firmware_property(fw, UPAZILA_SET_REBOOT_FLAGS, &flags, sizeof(flags));
	rpi_firmware_put(fw);
	if (ret)
		pr_err("upazila_tryboot: the firmware refused the tryboot flag (%d)\n", ret);
	else
		pr_info("upazila_tryboot: tryboot flag set for this restart\n");
	return NOTIFY_DONE;
}

static struct notifier_block tryboot_nb = {
	.notifier_call = tryboot_notify,
};

static int __init upazila_tryboot_init(void)
{
	fw_node = of_find_compatible_node(NULL, NULL, "raspberrypi,bcm2835-firmware");
	if (!fw_node)
		return -ENODEV;
	return register_reboot_notifier(&tryboot_nb);
}

static void __exit upazila_tryboot_exit(void)
{
	unregister_reboot_notifier(&tryboot_nb);
	of_node_put(fw_node);
}

/* no driver: the table only makes udev load this module where the Pi's firmware node is */
static const struct of_device_id upazila_tryboot_of_match[] = {
	{ .compatible = "raspberrypi,bcm2835-firmware" },
	{ }
};
MODULE_DEVICE_TABLE(of, upazila_tryboot_of_match);

module_init(upazila_tryboot_init);
module_exit(upazila_tryboot_exit);
MODULE_DESCRIPTION("Raspberry Pi firmware tryboot flag on reboot \"0 tryboot\" (upazila hub)");
MODULE_LICENSE("GPL");
