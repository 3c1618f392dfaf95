"""The demo's people (community.demo, as `linli demo seed` makes them) as console users, for transcripts on the
demo. The worker reads English here, so the transcripts are easy to follow; the others read the language the
demo gives them. Each test file makes its own PEOPLE tuple: who is at the terminal in its stories."""

from __future__ import annotations

from bot.channels.console import ConsoleUser

WORKER = ConsoleUser("worker", "李娜", "en")  # community worker of 梧桐社区
WANG = ConsoleUser("wang", "王芳", "zh-hans")  # 3号楼, reads Chinese
LIU = ConsoleUser("liu", "刘洋", "zh-hans")  # 3号楼, reads Chinese
CHEN = ConsoleUser("chen", "陈晓", "en")  # 7号楼, chose English
COMMITTEE = ConsoleUser("committee", "张伟", "zh-hans")  # 12号楼, residents' committee member: moderates
STREET = ConsoleUser("street", "周敏", "zh-hans")  # street administrator above 梧桐社区: moderates too
ZHAO = ConsoleUser("zhao", "赵大山", "zh-hans")  # 稻香村, another community (with 钱德福, 马秀英, 何国庆, 罗春梅)
ZHENG = ConsoleUser("zheng", "郑丽", "zh-hans")  # 5号楼, household representative
WU = ConsoleUser("wu", "吴强", "zh-hans")  # 5号楼, lives with 郑丽
HUANG = ConsoleUser("huang", "黄建华", "zh-hans")  # 5号楼, household representative of another flat
