"""``softphone devices``: the sound devices PortAudio sees, defaults marked."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.table import Table

from softphone.media.device import default_devices, list_devices


@click.command("devices")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per device.")
def devices_command(as_json: bool) -> None:
    """List sound devices (index, name, input/output channels, default rate).

    \b
    Example:
      softphone devices
      softphone call sip:bob@127.0.0.1:5062 --device 3
    """
    devices = list_devices()
    default_in, default_out = default_devices()
    if as_json:
        for index, device in enumerate(devices):
            click.echo(json.dumps({
                "index": index, "name": device["name"],
                "inputs": device["max_input_channels"], "outputs": device["max_output_channels"],
                "rate": device["default_samplerate"], "default_input": index == default_in,
                "default_output": index == default_out}))
        return
    if not devices:
        click.echo("no sound devices (use --play/--record or --null-audio for calls)")
        return
    table = Table("", "index", "name", "in", "out", "rate")
    for index, device in enumerate(devices):
        marks = ("<" if index == default_in else "") + (">" if index == default_out else "")
        table.add_row(marks, str(index), str(device["name"]),
                      str(device["max_input_channels"]), str(device["max_output_channels"]),
                      f"{device['default_samplerate']:.0f}")
    Console().print(table)
    click.echo("< default input, > default output")
