# ruff: noqa: E501 - the passages read better on one line each
"""The retrieval benchmark's corpus and labelled questions (Chinese and English), written for it.

A fictional appliance retailer's knowledge base: a passage per product and topic (price, warranty,
care, specifications) and per store (hours, address and parking), in English and in Chinese, plus
policy pages. Each question is labelled with the one passage that answers it, and is worded the way
a customer would ask — not copied from the passage — so neither ranking finds every answer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PRODUCTS = [
    # (english name, chinese name, category en, category zh)
    ("AeroBrew kettle", "风语电热水壶", "kettle", "电热水壶"),
    ("CrispMaster toaster", "脆香多士炉", "toaster", "多士炉"),
    ("RiceKing cooker", "稻香电饭煲", "rice cooker", "电饭煲"),
    ("FrostLine fridge", "霜线冰箱", "fridge", "冰箱"),
    ("BreezeOne fan", "清风落地扇", "fan", "风扇"),
    ("PureAir purifier", "净界空气净化器", "air purifier", "空气净化器"),
    ("SwiftWash washer", "迅洗洗衣机", "washing machine", "洗衣机"),
    ("DryNest dryer", "暖巢干衣机", "clothes dryer", "干衣机"),
    ("SteamPro iron", "蒸汽熨斗Pro", "steam iron", "蒸汽熨斗"),
    ("BlendStorm blender", "飓风破壁机", "blender", "破壁机"),
    ("BeanWise grinder", "豆知磨豆机", "coffee grinder", "磨豆机"),
    ("EspressoLab machine", "意式咖啡机", "espresso machine", "咖啡机"),
    ("WarmGlow heater", "暖阳取暖器", "heater", "取暖器"),
    ("CoolWave air conditioner", "凉波空调", "air conditioner", "空调"),
    ("SoundNest speaker", "声巢音箱", "speaker", "音箱"),
    ("ClearView monitor", "明视显示器", "monitor", "显示器"),
    ("QuietVac vacuum", "静吸吸尘器", "vacuum cleaner", "吸尘器"),
    ("RoboSweep robot", "扫地机器人", "robot vacuum", "扫地机器人"),
    ("DishGenie dishwasher", "洗碗精灵洗碗机", "dishwasher", "洗碗机"),
    ("OvenCraft oven", "匠心烤箱", "oven", "烤箱"),
    ("MicroQuick microwave", "速热微波炉", "microwave", "微波炉"),
    ("JuiceJoy juicer", "鲜榨榨汁机", "juicer", "榨汁机"),
    ("HairBreeze dryer", "柔风吹风机", "hair dryer", "吹风机"),
    ("SmileBrush toothbrush", "微笑电动牙刷", "electric toothbrush", "电动牙刷"),
    ("ShaveEdge shaver", "锋锐剃须刀", "shaver", "剃须刀"),
    ("LightNest lamp", "光巢台灯", "desk lamp", "台灯"),
    ("WaterPure filter", "纯水净水器", "water filter", "净水器"),
    ("SlowCook pot", "慢炖锅", "slow cooker", "慢炖锅"),
    ("GrillMate grill", "烧烤大师电烤盘", "electric grill", "电烤盘"),
    ("HumidiCloud humidifier", "云雾加湿器", "humidifier", "加湿器"),
]

CITIES = [
    ("Shanghai", "上海"), ("Beijing", "北京"), ("Shenzhen", "深圳"), ("Guangzhou", "广州"),
    ("Hangzhou", "杭州"), ("Chengdu", "成都"), ("Wuhan", "武汉"), ("Nanjing", "南京"),
    ("Xi'an", "西安"), ("Suzhou", "苏州"), ("Tianjin", "天津"), ("Chongqing", "重庆"),
    ("Qingdao", "青岛"), ("Xiamen", "厦门"), ("Dalian", "大连"), ("Kunming", "昆明"),
    ("Singapore", "新加坡"), ("London", "伦敦"), ("Sydney", "悉尼"), ("Toronto", "多伦多"),
]  # fmt: skip

POLICIES = [
    (
        "Returns",
        "Unused items can be returned within 30 days of delivery with the receipt. Opened items are "
        "accepted within 7 days if faulty. Refunds go back to the original payment method within five "
        "working days.",
        "How many days do I have to send something back?",
    ),
    (
        "Delivery",
        "Orders over 99 dollars ship free. Standard delivery takes two to four working days; express "
        "delivery arrives the next day for a fee of 15 dollars.",
        "Is shipping free and how fast does it arrive?",
    ),
    (
        "Installation",
        "Large appliances such as fridges, washers and air conditioners are installed free of charge by "
        "our technicians on the day of delivery; the old appliance is taken away on request.",
        "Do you set up the new washing machine for me?",
    ),
    (
        "Membership",
        "Members earn one point per dollar spent. One hundred points are worth one dollar off the next "
        "purchase. Points expire after two years.",
        "How much are my loyalty points worth?",
    ),
    (
        "退货政策",
        "未使用的商品自签收之日起三十天内凭小票可以退货；已拆封的商品如有质量问题七天内可以退货。退款会在五个工作日内退回原支付账户。",
        "买了东西不想要了，多久之内能退？",
    ),
    (
        "配送说明",
        "订单满九十九元免运费。普通配送需要二到四个工作日；加急配送次日送达，收费十五元。",
        "运费怎么算，几天能送到？",
    ),
    (
        "安装服务",
        "冰箱、洗衣机、空调等大家电由我们的技师在送货当天免费安装，旧机器可按要求免费拉走。",
        "买空调包安装吗？",
    ),
    (
        "会员积分",
        "会员每消费一元积一分，一百积分可抵扣一元，积分有效期两年。",
        "积分能抵多少钱？",
    ),
]


@dataclass
class Passage:
    key: str
    title: str
    section: str
    text: str


@dataclass
class Question:
    text: str
    answer: str  # the key of the passage that answers it
    language: str


def build(seed: int = 7) -> tuple[list[Passage], list[Question]]:
    rng = random.Random(seed)
    passages: list[Passage] = []
    questions: list[Question] = []
    for i, (name, zh, cat, zh_cat) in enumerate(PRODUCTS):
        price = 29 + (i * 37) % 900
        years = 1 + i % 5
        watts = 300 + (i * 113) % 2200
        weight = round(1.2 + (i * 0.7) % 30, 1)
        colours = rng.sample(["white", "black", "silver", "red", "blue", "green"], 2)
        passages += [
            Passage(
                f"p{i}-price",
                name,
                "Price",
                f"The {name} is our {cat} model. It costs {price} dollars and comes in {colours[0]} or {colours[1]}. Members pay five percent less.",
            ),
            Passage(
                f"p{i}-warranty",
                name,
                "Warranty",
                f"Every {name} carries a {years}-year warranty covering parts and labour. Register the serial number within 30 days to extend it by one year.",
            ),
            Passage(
                f"p{i}-care",
                name,
                "Care",
                f"Clean the {name} with a soft damp cloth after unplugging it. Descale or wash removable parts monthly; never immerse the base of the {cat} in water.",
            ),
            Passage(
                f"p{i}-specs",
                name,
                "Specifications",
                f"{name} specifications: rated power {watts} W, weight {weight} kg, 220–240 V, cable length 1.2 m, energy class A.",
            ),
            Passage(
                f"p{i}-zh-price",
                zh,
                "价格",
                f"{zh}是我们的{zh_cat}型号，售价{price}元，有两种颜色可选。会员购买可享九五折。",
            ),
            Passage(
                f"p{i}-zh-warranty",
                zh,
                "保修",
                f"每台{zh}整机保修{years}年，包括零件和人工。购买后三十天内登记序列号可延长保修一年。",
            ),
        ]
        questions += [
            Question(f"How much does the {name} cost?", f"p{i}-price", "en"),
            Question(f"What is the guarantee on the {name}?", f"p{i}-warranty", "en"),
            Question(f"How do I clean my {name}?", f"p{i}-care", "en"),
            Question(f"What wattage is the {name}?", f"p{i}-specs", "en"),
            Question(f"{zh}多少钱？", f"p{i}-zh-price", "zh"),
            Question(f"{zh}保修几年", f"p{i}-zh-warranty", "zh"),
        ]
    for j, (city, zh_city) in enumerate(CITIES):
        opens, closes = 8 + j % 3, 20 + j % 3
        street = 100 + j * 17
        passages += [
            Passage(
                f"s{j}-hours",
                f"{city} store",
                "Opening hours",
                f"Our {city} store opens at {opens}:00 and closes at {closes}:00 every day, including public holidays except the first day of the new year.",
            ),
            Passage(
                f"s{j}-address",
                f"{city} store",
                "Address and parking",
                f"The {city} store is at {street} Harbour Road, next to the metro station. Customers park free for two hours in the basement.",
            ),
            Passage(
                f"s{j}-zh-hours",
                f"{zh_city}门店",
                "营业时间",
                f"{zh_city}门店每天{opens}点开门，{closes}点关门，节假日照常营业，元旦当天休息。",
            ),
            Passage(
                f"s{j}-zh-address",
                f"{zh_city}门店",
                "地址与停车",
                f"{zh_city}门店位于港湾路{street}号，紧邻地铁站，顾客可在地下停车场免费停车两小时。",
            ),
        ]
        questions += [
            Question(f"When does the {city} shop open?", f"s{j}-hours", "en"),
            Question(f"Where is your {city} store and can I park there?", f"s{j}-address", "en"),
            Question(f"{zh_city}店几点开门？", f"s{j}-zh-hours", "zh"),
            Question(f"{zh_city}的门店在哪里，能停车吗", f"s{j}-zh-address", "zh"),
        ]
    for k, (title, text, question) in enumerate(POLICIES):
        passages.append(Passage(f"policy{k}", "Policies" if k < 4 else "政策", title, text))
        questions.append(Question(question, f"policy{k}", "zh" if k >= 4 else "en"))
    return passages, questions
