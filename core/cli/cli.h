/* Entry points of the CLI sub-commands implemented outside main.c. */
#ifndef VKF_CLI_H
#define VKF_CLI_H

int vkf_cli_devices(int argc, char **argv);
int vkf_cli_bench(int argc, char **argv);
int vkf_cli_serve(int argc, char **argv);
int vkf_cli_inspect(int argc, char **argv);
int vkf_cli_synth(int argc, char **argv);

#endif
