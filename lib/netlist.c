/*
 * netlist - lists of IPv4/IPv6 networks, such as internal_networks.
 *
 * A list is parsed once at start-up and then only read, so it may be
 * shared by all threads.  IPv4-mapped IPv6 addresses (::ffff:192.0.2.1)
 * match IPv4 networks.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "tollgate/conf.h"

struct tg_net {
	int		family;		/* AF_INET or AF_INET6 */
	unsigned char	addr[16];
	unsigned int	prefix;		/* bits */
};

struct tg_netlist {
	struct tg_net	*nets;
	size_t		 count;
};

/* tg_net_parse_addr - text to family + 16 bytes; IPv4-mapped becomes v4 */
static bool
tg_net_parse_addr(const char *s, int *family, unsigned char *addr)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	memset(addr, 0, 16);
	if (inet_pton(AF_INET, s, addr) == 1) {
		*family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, s, addr) != 1)
		return false;
	*family = AF_INET6;
	if (memcmp(addr, mapped, sizeof(mapped)) == 0) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = AF_INET;
	}
	return true;
}

/* tg_net_parse - "addr" or "addr/prefix" */
static bool
tg_net_parse(const char *word, struct tg_net *net)
{
	char	 text[64], *slash;
	long	 prefix;
	int	 max;

	if (strlen(word) >= sizeof(text))
		return false;
	memcpy(text, word, strlen(word) + 1);
	if ((slash = strchr(text, '/')) != NULL)
		*slash++ = '\0';
	if (!tg_net_parse_addr(text, &net->family, net->addr))
		return false;
	max = net->family == AF_INET ? 32 : 128;
	if (slash == NULL)
		prefix = max;
	else if (!tg_parse_long(slash, 0, max, &prefix))
		return false;
	net->prefix = (unsigned int)prefix;
	return true;
}

/* tg_netlist_parse - a blank- or comma-separated list of networks */
struct tg_netlist *
tg_netlist_parse(const char *text, struct tg_err *err)
{
	struct tg_netlist	*list;
	const char		*p = text, *end;
	char			*word;
	size_t			 len;

	list = tg_calloc(1, sizeof(*list));
	for (;;) {
		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		end = p + len;
		word = tg_strndup(p, len);
		list->nets = tg_reallocarray(list->nets, list->count + 1,
		    sizeof(*list->nets));
		if (!tg_net_parse(word, &list->nets[list->count])) {
			(void)tg_err_set(err, TG_PERM, "bad network \"%s\"",
			    word);
			free(word);
			return tg_netlist_free(list);
		}
		free(word);
		list->count++;
		p = end;
	}
	return list;
}

/* tg_netlist_free - release a list; accepts NULL */
struct tg_netlist *
tg_netlist_free(struct tg_netlist *list)
{
	if (list != NULL) {
		free(list->nets);
		free(list);
	}
	return NULL;
}

/* tg_net_match - whether addr (same family) is inside net */
static bool
tg_net_match(const struct tg_net *net, const unsigned char *addr)
{
	unsigned int	full = net->prefix / 8, rest = net->prefix % 8;
	unsigned char	mask;

	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (net->addr[full] & mask) == (addr[full] & mask);
}

/* tg_netlist_match - whether the text address is in the list */
bool
tg_netlist_match(const struct tg_netlist *list, const char *text)
{
	unsigned char	addr[16];
	int		family;
	size_t		i;

	if (list == NULL || text == NULL ||
	    !tg_net_parse_addr(text, &family, addr))
		return false;
	for (i = 0; i < list->count; i++)
		if (list->nets[i].family == family &&
		    tg_net_match(&list->nets[i], addr))
			return true;
	return false;
}
